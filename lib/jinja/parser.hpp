// Jinja's grammar (jinja2/parser.py) over the lexer's tokens, producing the AST.
#pragma once

#include <memory>
#include <string_view>

#include "lib/jinja/ast.hpp"

namespace slm::jinja::detail {

// Nesting bounds, so that untrusted templates cannot exhaust the stack while being
// parsed, evaluated or destroyed.
inline constexpr int max_statement_nesting = 64;   // blocks inside blocks
inline constexpr int max_expression_depth = 256;   // operators, calls, brackets inside each other

// Throws slm::Error("jinja: line L: ...").
std::unique_ptr<TemplateProgram> parse_template(std::string_view source);

}  // namespace slm::jinja::detail
