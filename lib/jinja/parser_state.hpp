// The parser's state and its grammar functions, shared by parser.cpp (statements) and
// parser_expressions.cpp (expressions). Private to lib/jinja.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/jinja/ast.hpp"
#include "lib/jinja/lexer.hpp"
#include "lib/jinja/parser.hpp"
#include "lib/jinja/runtime.hpp"
#include "slm/error.hpp"

namespace slm::jinja::detail {

inline NodePtr make_node(NodeKind kind, int line) {
  auto node = std::make_unique<Node>();
  node->kind = kind;
  node->line = line;
  return node;
}

inline std::string describe(const Token& token) {
  switch (token.kind) {
    case TokenKind::end_of_input: return "end of template";
    case TokenKind::variable_end: return "end of print statement";
    case TokenKind::block_end: return "end of statement block";
    case TokenKind::text: return "template data";
    default: return token.text;
  }
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
    throw slm::Error(located_message(line, message));
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


  // ---- statements (parser.cpp)
  // Template data, {{ }} and statements until a {% name %} in `end_names` (left unconsumed,
  // positioned at the name) or the end of input.
  std::vector<NodePtr> parse_body(std::initializer_list<std::string_view> end_names);
  // Body of a block statement: `%}` then statements until `end_name`, which is consumed.
  std::vector<NodePtr> parse_block_body(std::string_view end_name);
  void parse_statement(std::vector<NodePtr>& body);
  NodePtr parse_if();
  // Names to assign: `a`, `a, b`, `(a, b)`.
  void parse_targets(Node& node, std::string_view end_name);
  NodePtr parse_for();
  NodePtr parse_set();
  // (name, name=default, ...) for macros and call blocks.
  void parse_signature(Node& node);
  NodePtr parse_macro();
  NodePtr parse_call_block();
  NodePtr parse_filter_block();
  NodePtr parse_with();
  NodePtr parse_scoped_block();

  // ---- expressions (parser_expressions.cpp)
  // Expressions separated by commas make a tuple (jinja's parse_tuple); a single one is itself.
  NodePtr parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<std::string_view> extra_end_names,
                      bool explicit_parentheses);
  bool is_tuple_end(std::initializer_list<std::string_view> extra_end_names) const;
  NodePtr parse_expression(bool with_condexpr);
  NodePtr parse_condexpr();
  NodePtr parse_or();
  NodePtr parse_and();
  NodePtr parse_not();
  NodePtr parse_compare();
  NodePtr parse_math1();
  NodePtr parse_concat();
  NodePtr parse_math2();
  NodePtr parse_pow();
  NodePtr parse_unary(bool with_filter);
  NodePtr parse_primary();
  NodePtr parse_list();
  NodePtr parse_dict();
  NodePtr parse_postfix(NodePtr node);
  NodePtr parse_filter_expr(NodePtr node);
  NodePtr parse_subscript(NodePtr object);
  // An index expression or a slice [start:stop:step] (object slot left empty).
  NodePtr parse_subscribed();
  // (args, name=value) into node->args (after any already there) and node->keywords.
  void parse_call_args(Node& node);
  NodePtr parse_call(NodePtr callee);
  std::string parse_dotted_name();
  // `| name(args) | name ...`; with start_inline the first filter has no leading pipe.
  NodePtr parse_filter(NodePtr node, bool start_inline);
  NodePtr parse_test(NodePtr operand);
};

}  // namespace slm::jinja::detail
