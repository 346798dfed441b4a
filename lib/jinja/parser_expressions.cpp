// Jinja's expression grammar, lowest precedence first: conditional, or, and, not,
// comparisons, + -, ~, * / // %, **, unary - +, then primaries with postfix subscripts,
// calls, filters and tests.
#include <fmt/format.h>

#include <algorithm>

#include "lib/jinja/builtins.hpp"
#include "lib/jinja/parser_state.hpp"

namespace slm::jinja::detail {

NodePtr Parser::parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<std::string_view> extra_end_names,
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

bool Parser::is_tuple_end(std::initializer_list<std::string_view> extra_end_names) const {
  const Token& token = current();
  if (token.kind == TokenKind::variable_end || token.kind == TokenKind::block_end || (token.kind == TokenKind::op && token.text == ")"))
    return true;
  return token.kind == TokenKind::name &&
         std::find(extra_end_names.begin(), extra_end_names.end(), token.text) != extra_end_names.end();
}

NodePtr Parser::parse_expression(bool with_condexpr) {
  NestingGuard guard(*this);
  return with_condexpr ? parse_condexpr() : parse_or();
}

NodePtr Parser::parse_condexpr() {
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

NodePtr Parser::parse_or() {
  NodePtr left = parse_and();
  while (is_name("or")) {
    const int line = next().line;
    left = binary(Operator::logical_or, std::move(left), parse_and(), line);
  }
  return left;
}

NodePtr Parser::parse_and() {
  NodePtr left = parse_not();
  while (is_name("and")) {
    const int line = next().line;
    left = binary(Operator::logical_and, std::move(left), parse_not(), line);
  }
  return left;
}

NodePtr Parser::parse_not() {
  if (is_name("not")) {
    NestingGuard guard(*this);
    const int line = next().line;
    return unary(Operator::logical_not, parse_not(), line);
  }
  return parse_compare();
}

NodePtr Parser::parse_compare() {
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

NodePtr Parser::parse_math1() {
  NodePtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    const Token op = next();
    left = binary(op.text == "+" ? Operator::add : Operator::subtract, std::move(left), parse_concat(), op.line);
  }
  return left;
}

NodePtr Parser::parse_concat() {
  NodePtr left = parse_math2();
  while (is_op("~")) {
    const int line = next().line;
    left = binary(Operator::concat, std::move(left), parse_math2(), line);
  }
  return left;
}

NodePtr Parser::parse_math2() {
  NodePtr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const Token op = next();
    const Operator kind = op.text == "*" ? Operator::multiply : op.text == "/" ? Operator::divide
                          : op.text == "//" ? Operator::floor_divide : Operator::modulo;
    left = binary(kind, std::move(left), parse_pow(), op.line);
  }
  return left;
}

NodePtr Parser::parse_pow() {
  NodePtr left = parse_unary(true);
  while (is_op("**")) {  // left-associative in jinja, unlike Python
    const int line = next().line;
    left = binary(Operator::power, std::move(left), parse_unary(true), line);
  }
  return left;
}

NodePtr Parser::parse_unary(bool with_filter) {
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

NodePtr Parser::parse_primary() {
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

NodePtr Parser::parse_list() {
  auto node = make_node(NodeKind::list_literal, next().line);
  while (!is_op("]")) {
    if (!node->args.empty()) expect_op(",");
    if (is_op("]")) break;
    node->args.push_back(parse_expression(true));
  }
  expect_op("]");
  return finish(std::move(node));
}

NodePtr Parser::parse_dict() {
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

NodePtr Parser::parse_postfix(NodePtr node) {
  while (true) {
    if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
    else if (is_op("(")) node = parse_call(std::move(node));
    else return node;
  }
}

NodePtr Parser::parse_filter_expr(NodePtr node) {
  while (true) {
    if (is_op("|")) node = parse_filter(std::move(node), false);
    else if (is_name("is")) node = parse_test(std::move(node));
    else if (is_op("(")) node = parse_call(std::move(node));
    else return node;
  }
}

NodePtr Parser::parse_subscript(NodePtr object) {
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
    for (const auto& subscript : subscripts)
      if (subscript->kind == NodeKind::slice) fail_at(token.line, "unsupported construct: a slice inside a tuple subscript");
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
NodePtr Parser::parse_subscribed() {
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
void Parser::parse_call_args(Node& node) {
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

NodePtr Parser::parse_call(NodePtr callee) {
  auto node = make_node(NodeKind::call, current().line);
  node->args.push_back(std::move(callee));
  parse_call_args(*node);
  return finish(std::move(node));
}

std::string Parser::parse_dotted_name() {
  std::string name = expect_name();
  while (skip_op(".")) {
    name.push_back('.');
    name += expect_name();
  }
  return name;
}

// `| name(args) | name ...`; with start_inline the first filter has no leading pipe.
NodePtr Parser::parse_filter(NodePtr node, bool start_inline) {
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

NodePtr Parser::parse_test(NodePtr operand) {
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

}  // namespace slm::jinja::detail
