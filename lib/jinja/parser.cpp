#include "lib/jinja/parser.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>

#include "lib/jinja/builtins.hpp"
#include "lib/jinja/lexer.hpp"
#include "slm/error.hpp"

namespace slm::jinja::detail {
namespace {

NodePtr make_node(NodeKind kind, int line) {
  auto node = std::make_unique<Node>();
  node->kind = kind;
  node->line = line;
  return node;
}

std::string describe(const Token& token) {
  switch (token.kind) {
    case TokenKind::end_of_input: return "end of template";
    case TokenKind::variable_end: return "end of print statement";
    case TokenKind::block_end: return "end of statement block";
    case TokenKind::text: return "template data";
    default: return token.text;
  }
}

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

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  std::unique_ptr<TemplateProgram> run() {
    auto program = std::make_unique<TemplateProgram>();
    program->body = parse_body({});
    if (current().kind != TokenKind::end_of_input) fail(fmt::format("unexpected '{}'", describe(current())));
    return program;
  }

 private:
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  int nesting_ = 0;     // recursion of the parser itself
  int loop_depth_ = 0;  // for bodies around the current statement (break/continue need one)

  // Bounds the parser's recursion; the AST depth is bounded separately by finish().
  struct NestingGuard {
    Parser& parser;
    explicit NestingGuard(Parser& p) : parser(p) {
      if (++parser.nesting_ > max_expression_depth) parser.fail(fmt::format("template nested deeper than {} levels", max_expression_depth));
    }
    ~NestingGuard() { --parser.nesting_; }
  };

  const Token& current() const { return tokens_[pos_]; }
  const Token& peek(std::size_t ahead = 1) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  Token next() {
    Token token = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return token;
  }

  [[noreturn]] void fail(const std::string& message) const { fail_at(current().line, message); }
  [[noreturn]] static void fail_at(int line, const std::string& message) {
    throw slm::Error(fmt::format("jinja: line {}: {}", line, message));
  }

  bool is_op(std::string_view op) const { return current().kind == TokenKind::op && current().text == op; }
  bool is_name(std::string_view name) const { return current().kind == TokenKind::name && current().text == name; }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) fail(fmt::format("expected token '{}', got '{}'", op, describe(current())));
  }
  void expect(TokenKind kind, std::string_view what) {
    if (current().kind != kind) fail(fmt::format("expected {}, got '{}'", what, describe(current())));
    next();
  }
  std::string expect_name() {
    if (current().kind != TokenKind::name) fail(fmt::format("expected name, got '{}'", describe(current())));
    return next().text;
  }

  // Records the nesting depth of a finished expression node and bounds it.
  NodePtr finish(NodePtr node) {
    int depth = 0;
    for (const auto& arg : node->args)
      if (arg) depth = std::max(depth, arg->depth);
    for (const auto& keyword : node->keywords) depth = std::max(depth, keyword.value->depth);
    node->depth = depth + 1;
    if (node->depth > max_expression_depth)
      fail_at(node->line, fmt::format("expression nested deeper than {} levels", max_expression_depth));
    return node;
  }

  NodePtr binary(Operator op, NodePtr left, NodePtr right, int line) {
    auto node = make_node(NodeKind::binary, line);
    node->op = op;
    node->args.push_back(std::move(left));
    node->args.push_back(std::move(right));
    return finish(std::move(node));
  }

  NodePtr unary(Operator op, NodePtr operand, int line) {
    auto node = make_node(NodeKind::unary, line);
    node->op = op;
    node->args.push_back(std::move(operand));
    return finish(std::move(node));
  }

  // ---------------------------------------------------------------- statements

  // Template data, {{ }} and statements until a {% name %} in `end_names` (left unconsumed,
  // positioned at the name) or the end of input.
  std::vector<NodePtr> parse_body(std::initializer_list<std::string_view> end_names) {
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
  std::vector<NodePtr> parse_block_body(std::string_view end_name) {
    expect(TokenKind::block_end, "end of statement block");
    auto body = parse_body({end_name});
    next();  // the end name
    return body;
  }

  void parse_statement(std::vector<NodePtr>& body) {
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

  NodePtr parse_if() {
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
  void parse_targets(Node& node, std::string_view end_name) {
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

  NodePtr parse_for() {
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

  NodePtr parse_set() {
    const int line = next().line;
    if (current().kind == TokenKind::name && peek().kind == TokenKind::op && peek().text == ".") {
      auto node = make_node(NodeKind::set_value, line);
      node->name = next().text;
      next();  // .
      node->attribute = expect_name();
      expect_op("=");
      node->args.push_back(parse_tuple(false, true, {}, false));
      return node;
    }
    auto target = make_node(NodeKind::set_value, line);
    parse_targets(*target, "");
    if (skip_op("=")) {
      target->args.push_back(parse_tuple(false, true, {}, false));
      return target;
    }
    auto node = make_node(NodeKind::set_block, line);
    node->targets = std::move(target->targets);
    node->unpack = target->unpack;
    node->args.push_back(is_op("|") ? parse_filter(nullptr, false) : nullptr);
    node->body = parse_block_body("endset");
    return node;
  }

  // (name, name=default, ...) for macros and call blocks.
  void parse_signature(Node& node) {
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

  NodePtr parse_macro() {
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

  NodePtr parse_call_block() {
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

  NodePtr parse_filter_block() {
    auto node = make_node(NodeKind::filter_block, next().line);
    node->args.push_back(parse_filter(nullptr, true));
    node->body = parse_block_body("endfilter");
    return node;
  }

  NodePtr parse_with() {
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

  NodePtr parse_scoped_block() {
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

  // ---------------------------------------------------------------- expressions

  bool is_tuple_end(std::initializer_list<std::string_view> extra_end_names) const {
    const Token& token = current();
    if (token.kind == TokenKind::variable_end || token.kind == TokenKind::block_end || (token.kind == TokenKind::op && token.text == ")"))
      return true;
    return token.kind == TokenKind::name &&
           std::find(extra_end_names.begin(), extra_end_names.end(), token.text) != extra_end_names.end();
  }

  NodePtr parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<std::string_view> extra_end_names,
                      bool explicit_parentheses) {
    const int line = current().line;
    std::vector<NodePtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end_names)) break;
      items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items.front());
      if (!explicit_parentheses) fail(fmt::format("Expected an expression, got '{}'", describe(current())));
    }
    auto node = make_node(NodeKind::tuple_literal, line);
    node->args = std::move(items);
    return finish(std::move(node));
  }

  NodePtr parse_expression(bool with_condexpr) {
    NestingGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  NodePtr parse_condexpr() {
    NodePtr expr = parse_or();
    while (is_name("if")) {
      const int line = next().line;
      auto node = make_node(NodeKind::conditional, line);
      NodePtr condition = parse_or();
      NodePtr otherwise = skip_name("else") ? parse_condexpr() : nullptr;
      node->args.push_back(std::move(expr));
      node->args.push_back(std::move(condition));
      node->args.push_back(std::move(otherwise));
      expr = finish(std::move(node));
    }
    return expr;
  }

  NodePtr parse_or() {
    NodePtr left = parse_and();
    while (is_name("or")) {
      const int line = next().line;
      left = binary(Operator::logical_or, std::move(left), parse_and(), line);
    }
    return left;
  }

  NodePtr parse_and() {
    NodePtr left = parse_not();
    while (is_name("and")) {
      const int line = next().line;
      left = binary(Operator::logical_and, std::move(left), parse_not(), line);
    }
    return left;
  }

  NodePtr parse_not() {
    if (is_name("not")) {
      NestingGuard guard(*this);
      const int line = next().line;
      return unary(Operator::logical_not, parse_not(), line);
    }
    return parse_compare();
  }

  NodePtr parse_compare() {
    NodePtr first = parse_math1();
    auto node = make_node(NodeKind::compare, current().line);
    while (true) {
      static constexpr std::pair<std::string_view, Operator> comparison_ops[] = {
          {"==", Operator::equal}, {"!=", Operator::not_equal}, {"<", Operator::less},
          {"<=", Operator::less_equal}, {">", Operator::greater}, {">=", Operator::greater_equal}};
      const auto found = std::find_if(std::begin(comparison_ops), std::end(comparison_ops),
                                      [&](const auto& entry) { return is_op(entry.first); });
      if (found != std::end(comparison_ops)) {
        next();
        node->compare_ops.push_back(found->second);
      } else if (is_name("in")) {
        next();
        node->compare_ops.push_back(Operator::in);
      } else if (is_name("not") && peek().kind == TokenKind::name && peek().text == "in") {
        next();
        next();
        node->compare_ops.push_back(Operator::not_in);
      } else {
        break;
      }
      if (node->args.empty()) node->args.push_back(std::move(first));
      node->args.push_back(parse_math1());
    }
    if (node->compare_ops.empty()) return first;
    return finish(std::move(node));
  }

  NodePtr parse_math1() {
    NodePtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token op = next();
      left = binary(op.text == "+" ? Operator::add : Operator::subtract, std::move(left), parse_concat(), op.line);
    }
    return left;
  }

  NodePtr parse_concat() {
    NodePtr left = parse_math2();
    while (is_op("~")) {
      const int line = next().line;
      left = binary(Operator::concat, std::move(left), parse_math2(), line);
    }
    return left;
  }

  NodePtr parse_math2() {
    NodePtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token op = next();
      const Operator kind = op.text == "*" ? Operator::multiply : op.text == "/" ? Operator::divide
                            : op.text == "//" ? Operator::floor_divide : Operator::modulo;
      left = binary(kind, std::move(left), parse_pow(), op.line);
    }
    return left;
  }

  NodePtr parse_pow() {
    NodePtr left = parse_unary(true);
    while (is_op("**")) {  // left-associative in jinja, unlike Python
      const int line = next().line;
      left = binary(Operator::power, std::move(left), parse_unary(true), line);
    }
    return left;
  }

  NodePtr parse_unary(bool with_filter) {
    NestingGuard guard(*this);
    NodePtr node;
    if (is_op("-") || is_op("+")) {
      const Token op = next();
      node = unary(op.text == "-" ? Operator::negate : Operator::plus, parse_unary(false), op.line);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  NodePtr parse_primary() {
    NestingGuard guard(*this);
    const Token& token = current();
    if (token.kind == TokenKind::name) {
      auto node = make_node(NodeKind::literal, token.line);
      if (token.text == "true" || token.text == "True") node->constant = Value(true);
      else if (token.text == "false" || token.text == "False") node->constant = Value(false);
      else if (token.text == "none" || token.text == "None") node->constant = Value::none();
      else {
        node->kind = NodeKind::variable;
        node->name = token.text;
      }
      next();
      return node;
    }
    if (token.kind == TokenKind::string) {
      auto node = make_node(NodeKind::literal, token.line);
      std::string text;
      while (current().kind == TokenKind::string) text += next().text;  // "a" "b" is "ab"
      node->constant = Value(std::move(text));
      return node;
    }
    if (token.kind == TokenKind::integer || token.kind == TokenKind::floating) {
      auto node = make_node(NodeKind::literal, token.line);
      node->constant = token.kind == TokenKind::integer ? Value(token.integer) : Value(token.floating);
      next();
      return node;
    }
    if (is_op("(")) {
      next();
      NodePtr node = parse_tuple(false, true, {}, true);
      expect_op(")");
      return node;
    }
    if (is_op("[")) return parse_list();
    if (is_op("{")) return parse_dict();
    fail(fmt::format("unexpected '{}'", describe(token)));
  }

  NodePtr parse_list() {
    auto node = make_node(NodeKind::list_literal, next().line);
    while (!is_op("]")) {
      if (!node->args.empty()) expect_op(",");
      if (is_op("]")) break;
      node->args.push_back(parse_expression(true));
    }
    expect_op("]");
    return finish(std::move(node));
  }

  NodePtr parse_dict() {
    auto node = make_node(NodeKind::dict_literal, next().line);
    while (!is_op("}")) {
      if (!node->args.empty()) expect_op(",");
      if (is_op("}")) break;
      node->args.push_back(parse_expression(true));
      expect_op(":");
      node->args.push_back(parse_expression(true));
    }
    expect_op("}");
    return finish(std::move(node));
  }

  NodePtr parse_postfix(NodePtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else return node;
    }
  }

  NodePtr parse_filter_expr(NodePtr node) {
    while (true) {
      if (is_op("|")) node = parse_filter(std::move(node), false);
      else if (is_name("is")) node = parse_test(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else return node;
    }
  }

  NodePtr parse_subscript(NodePtr object) {
    const Token token = next();
    if (token.text == ".") {
      const Token attribute = next();
      if (attribute.kind == TokenKind::name) {
        auto node = make_node(NodeKind::attribute, token.line);
        node->name = attribute.text;
        node->args.push_back(std::move(object));
        return finish(std::move(node));
      }
      if (attribute.kind != TokenKind::integer) fail_at(attribute.line, "expected name or number");
      auto node = make_node(NodeKind::subscript, token.line);
      auto index = make_node(NodeKind::literal, attribute.line);
      index->constant = Value(attribute.integer);
      node->args.push_back(std::move(object));
      node->args.push_back(std::move(index));
      return finish(std::move(node));
    }
    std::vector<NodePtr> subscripts;
    while (!is_op("]")) {
      if (!subscripts.empty()) expect_op(",");
      subscripts.push_back(parse_subscribed());
    }
    expect_op("]");
    if (subscripts.empty()) fail_at(token.line, "expected subscript expression");
    NodePtr key;
    if (subscripts.size() == 1) {
      key = std::move(subscripts.front());
    } else {
      key = make_node(NodeKind::tuple_literal, token.line);
      key->args = std::move(subscripts);
      key = finish(std::move(key));
    }
    if (key->kind == NodeKind::slice) {  // the slice node takes the object as its first argument
      key->args.front() = std::move(object);
      return finish(std::move(key));
    }
    auto node = make_node(NodeKind::subscript, token.line);
    node->args.push_back(std::move(object));
    node->args.push_back(std::move(key));
    return finish(std::move(node));
  }

  // An index expression or a slice [start:stop:step] (object slot left empty).
  NodePtr parse_subscribed() {
    const int line = current().line;
    NodePtr start;
    if (!is_op(":")) {
      start = parse_expression(true);
      if (!is_op(":")) return start;
    }
    next();  // first colon
    auto node = make_node(NodeKind::slice, line);
    node->args.push_back(nullptr);
    node->args.push_back(std::move(start));
    node->args.push_back(is_op(":") || is_op("]") || is_op(",") ? nullptr : parse_expression(true));
    NodePtr step;
    if (skip_op(":") && !is_op("]") && !is_op(",")) step = parse_expression(true);
    node->args.push_back(std::move(step));
    return node;
  }

  // (args, name=value) into node->args (after any already there) and node->keywords.
  void parse_call_args(Node& node) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (is_op("*") || is_op("**")) fail("unsupported construct: *args / **kwargs in a call");
      if (current().kind == TokenKind::name && peek().kind == TokenKind::op && peek().text == "=") {
        std::string name = next().text;
        next();
        node.keywords.push_back(Keyword{std::move(name), parse_expression(true)});
      } else {
        if (!node.keywords.empty()) fail("invalid syntax for function call expression");
        node.args.push_back(parse_expression(true));
      }
    }
    expect_op(")");
  }

  NodePtr parse_call(NodePtr callee) {
    auto node = make_node(NodeKind::call, current().line);
    node->args.push_back(std::move(callee));
    parse_call_args(*node);
    return finish(std::move(node));
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (skip_op(".")) {
      name.push_back('.');
      name += expect_name();
    }
    return name;
  }

  // `| name(args) | name ...`; with start_inline the first filter has no leading pipe.
  NodePtr parse_filter(NodePtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      auto filter = make_node(NodeKind::filter, current().line);
      filter->name = parse_dotted_name();
      if (!is_jinja_filter(filter->name)) fail_at(filter->line, fmt::format("No filter named '{}'.", filter->name));
      filter->args.push_back(std::move(node));
      if (is_op("(")) parse_call_args(*filter);
      node = finish(std::move(filter));
    }
    return node;
  }

  NodePtr parse_test(NodePtr operand) {
    const int line = next().line;  // is
    const bool negated = skip_name("not");
    auto node = make_node(NodeKind::test, line);
    node->name = parse_dotted_name();
    if (!is_jinja_test(node->name)) fail_at(line, fmt::format("No test named '{}'.", node->name));
    node->args.push_back(std::move(operand));
    const Token& token = current();
    if (is_op("(")) {
      parse_call_args(*node);
    } else if ((token.kind == TokenKind::name || token.kind == TokenKind::string || token.kind == TokenKind::integer ||
                token.kind == TokenKind::floating || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("You cannot chain multiple tests with is");
      node->args.push_back(parse_postfix(parse_primary()));
    }
    node = finish(std::move(node));
    return negated ? unary(Operator::logical_not, std::move(node), line) : std::move(node);
  }
};

}  // namespace

std::unique_ptr<TemplateProgram> parse_template(std::string_view source) { return Parser(tokenize(source)).run(); }

}  // namespace slm::jinja::detail
