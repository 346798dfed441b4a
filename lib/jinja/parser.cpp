// Jinja's statements ({% if %}, {% for %}, {% set %}, {% macro %}, ...) and the template
// body around them; expressions are in parser_expressions.cpp.
#include <fmt/format.h>

#include <algorithm>

#include "lib/jinja/parser_state.hpp"

namespace slm::jinja::detail {
namespace {

// Whether a statement list reads `name` anywhere (macros bind caller/varargs/kwargs only then).
bool reads_name(const std::vector<NodePtr>& nodes, std::string_view name);
bool reads_name(const Node* node, std::string_view name) {
  if (!node) return false;
  if (node->kind == NodeKind::variable && node->name == name) return true;
  if (reads_name(node->args, name) || reads_name(node->defaults, name) || reads_name(node->body, name) ||
      reads_name(node->else_body, name))
    return true;
  for (const auto& branch : node->branches)
    if (reads_name(branch, name)) return true;
  return std::any_of(node->keywords.begin(), node->keywords.end(),
                     [&](const Keyword& keyword) { return reads_name(keyword.value.get(), name); });
}
bool reads_name(const std::vector<NodePtr>& nodes, std::string_view name) {
  return std::any_of(nodes.begin(), nodes.end(), [&](const NodePtr& node) { return reads_name(node.get(), name); });
}

}  // namespace

// Template data, {{ }} and statements until a {% name %} in `end_names` (left unconsumed,
// positioned at the name) or the end of input.
std::vector<NodePtr> Parser::parse_body(std::initializer_list<std::string_view> end_names) {
  NestingGuard guard(*this);
  if (nesting_ > max_statement_nesting) fail(fmt::format("blocks nested deeper than {} levels", max_statement_nesting));
  std::vector<NodePtr> body;
  while (current().kind != TokenKind::end_of_input) {
    const Token& token = current();
    if (token.kind == TokenKind::text) {
      auto node = make_node(NodeKind::text, token.line);
      node->constant = Value(token.text);
      body.push_back(std::move(node));
      next();
    } else if (token.kind == TokenKind::variable_begin) {
      next();
      auto node = make_node(NodeKind::output, token.line);
      node->args.push_back(parse_tuple(false, true, {}, false));
      expect(TokenKind::variable_end, "'}}'");
      body.push_back(std::move(node));
    } else if (token.kind == TokenKind::block_begin) {
      next();
      if (current().kind == TokenKind::name &&
          std::find(end_names.begin(), end_names.end(), current().text) != end_names.end())
        return body;
      parse_statement(body);
      expect(TokenKind::block_end, "end of statement block");
    } else {
      fail(fmt::format("unexpected '{}'", describe(token)));
    }
  }
  if (end_names.size() > 0) {
    std::string expected;
    for (std::string_view name : end_names) expected += (expected.empty() ? "'" : " or '") + std::string(name) + "'";
    fail(fmt::format("unexpected end of template, expected {}", expected));
  }
  return body;
}

// Body of a block statement: `%}` then statements until `end_name`, which is consumed.
std::vector<NodePtr> Parser::parse_block_body(std::string_view end_name) {
  expect(TokenKind::block_end, "end of statement block");
  auto body = parse_body({end_name});
  next();  // the end name
  return body;
}

void Parser::parse_statement(std::vector<NodePtr>& body) {
  if (current().kind != TokenKind::name) fail("tag name expected");
  const Token tag = current();
  const std::string& name = tag.text;
  if (name == "if") return body.push_back(parse_if());
  if (name == "for") return body.push_back(parse_for());
  if (name == "set") return body.push_back(parse_set());
  if (name == "macro") return body.push_back(parse_macro());
  if (name == "call") return body.push_back(parse_call_block());
  if (name == "filter") return body.push_back(parse_filter_block());
  if (name == "with") return body.push_back(parse_with());
  if (name == "block" || name == "generation") return body.push_back(parse_scoped_block());
  if (name == "autoescape") {  // autoescape is off in transformers; the body renders as is
    next();
    parse_expression(true);
    auto node = make_node(NodeKind::with_block, tag.line);
    node->body = parse_block_body("endautoescape");
    return body.push_back(std::move(node));
  }
  if (name == "print") {
    next();
    auto node = make_node(NodeKind::output, tag.line);
    node->args.push_back(parse_tuple(false, true, {}, false));
    return body.push_back(std::move(node));
  }
  if (name == "break" || name == "continue") {
    if (loop_depth_ == 0) fail(fmt::format("'{}' outside of a loop", name));
    next();
    return body.push_back(make_node(name == "break" ? NodeKind::break_loop : NodeKind::continue_loop, tag.line));
  }
  if (name == "include" || name == "import" || name == "from" || name == "extends")
    fail(fmt::format("unsupported construct: {{% {} %}} (templates cannot load other templates)", name));
  fail(fmt::format("Encountered unknown tag '{}'.", name));
}

NodePtr Parser::parse_if() {
  auto node = make_node(NodeKind::if_block, next().line);
  while (true) {
    node->args.push_back(parse_tuple(false, false, {}, false));
    expect(TokenKind::block_end, "end of statement block");
    node->branches.push_back(parse_body({"elif", "else", "endif"}));
    const Token ending = next();
    if (ending.text == "else") node->else_body = parse_block_body("endif");
    if (ending.text != "elif") return node;
  }
}

// Names to assign: `a`, `a, b`, `(a, b)`.
void Parser::parse_targets(Node& node, std::string_view end_name) {
  const bool parenthesized = skip_op("(");
  while (true) {
    node.targets.push_back(expect_name());
    if (!skip_op(",")) break;
    node.unpack = true;
    if (is_name(end_name) || is_op(")") || is_op("=")) break;
  }
  if (parenthesized) {
    expect_op(")");
    node.unpack = true;
  }
  if (is_op(".") || is_op("[")) fail("can't assign to an attribute or item here");
}

NodePtr Parser::parse_for() {
  auto node = make_node(NodeKind::for_loop, next().line);
  parse_targets(*node, "in");
  if (!skip_name("in")) fail(fmt::format("expected 'in', got '{}'", describe(current())));
  node->args.push_back(parse_tuple(false, false, {"recursive"}, false));
  node->args.push_back(skip_name("if") ? parse_expression(true) : nullptr);
  node->recursive = skip_name("recursive");
  expect(TokenKind::block_end, "end of statement block");
  ++loop_depth_;
  node->body = parse_body({"endfor", "else"});
  --loop_depth_;
  if (next().text == "else") node->else_body = parse_block_body("endfor");
  return node;
}

// {% set target = value %} or {% set target | filters %}...{% endset %}, where the target
// is names or a namespace attribute (ns.attr).
NodePtr Parser::parse_set() {
  auto node = make_node(NodeKind::set_value, next().line);
  if (current().kind == TokenKind::name && peek().kind == TokenKind::op && peek().text == ".") {
    node->name = next().text;
    next();  // .
    node->attribute = expect_name();
  } else {
    parse_targets(*node, "");
  }
  if (skip_op("=")) {
    node->args.push_back(parse_tuple(false, true, {}, false));
    return node;
  }
  node->kind = NodeKind::set_block;
  node->args.push_back(is_op("|") ? parse_filter(nullptr, false) : nullptr);
  node->body = parse_block_body("endset");
  return node;
}

// (name, name=default, ...) for macros and call blocks.
void Parser::parse_signature(Node& node) {
  expect_op("(");
  while (!is_op(")")) {
    if (!node.targets.empty()) expect_op(",");
    if (is_op(")")) break;
    node.targets.push_back(expect_name());
    if (skip_op("=")) node.defaults.push_back(parse_expression(true));
    else if (std::any_of(node.defaults.begin(), node.defaults.end(), [](const NodePtr& d) { return d != nullptr; }))
      fail("non-default argument follows default argument");
    else node.defaults.push_back(nullptr);
  }
  expect_op(")");
}

NodePtr Parser::parse_macro() {
  auto node = make_node(NodeKind::macro, next().line);
  node->name = expect_name();
  parse_signature(*node);
  const int saved_loop_depth = std::exchange(loop_depth_, 0);
  node->body = parse_block_body("endmacro");
  loop_depth_ = saved_loop_depth;
  node->uses_caller = reads_name(node->body, "caller");
  node->uses_varargs = reads_name(node->body, "varargs");
  node->uses_kwargs = reads_name(node->body, "kwargs");
  return node;
}

NodePtr Parser::parse_call_block() {
  auto node = make_node(NodeKind::call_block, next().line);
  if (is_op("(")) parse_signature(*node);
  NodePtr call = parse_expression(true);
  if (call->kind != NodeKind::call) fail_at(node->line, "expected call");
  node->args.push_back(std::move(call));
  const int saved_loop_depth = std::exchange(loop_depth_, 0);
  node->body = parse_block_body("endcall");
  loop_depth_ = saved_loop_depth;
  node->uses_varargs = reads_name(node->body, "varargs");
  node->uses_kwargs = reads_name(node->body, "kwargs");
  return node;
}

NodePtr Parser::parse_filter_block() {
  auto node = make_node(NodeKind::filter_block, next().line);
  node->args.push_back(parse_filter(nullptr, true));
  node->body = parse_block_body("endfilter");
  return node;
}

NodePtr Parser::parse_with() {
  auto node = make_node(NodeKind::with_block, next().line);
  while (current().kind != TokenKind::block_end) {
    if (!node->targets.empty()) expect_op(",");
    node->targets.push_back(expect_name());
    expect_op("=");
    node->args.push_back(parse_expression(true));
  }
  node->body = parse_block_body("endwith");
  return node;
}

NodePtr Parser::parse_scoped_block() {
  const Token tag = next();
  auto node = make_node(NodeKind::block, tag.line);
  if (tag.text == "block") {
    node->name = expect_name();
    skip_name("scoped");
    skip_name("required");
    node->body = parse_block_body("endblock");
    skip_name(node->name);
  } else {  // transformers' {% generation %}: marks assistant text, renders as is
    node->body = parse_block_body("endgeneration");
  }
  return node;
}

std::unique_ptr<TemplateProgram> parse_template(std::string_view source) { return Parser(tokenize(source)).run(); }

}  // namespace slm::jinja::detail
