// Jinja's lexer with the transformers settings: trim_blocks, lstrip_blocks,
// keep_trailing_newline=False. Whitespace control is applied here, to the text tokens,
// exactly where jinja2's lexer applies it; comments and {% raw %} never reach the parser.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace slm::jinja::detail {

enum class TokenKind : std::uint8_t {
  text,            // template data between tags
  variable_begin,  // {{
  variable_end,    // }}
  block_begin,     // {%
  block_end,       // %}
  name,
  string,          // text holds the unescaped value
  integer,
  floating,
  op,              // text holds the operator: + - / // * ** % ~ [ ] ( ) { } == != < <= > >= = . : | , ;
  end_of_input,
};

struct Token {
  TokenKind kind;
  int line;
  std::string text;
  std::int64_t integer = 0;
  double floating = 0;
};

// Throws slm::Error("jinja: line L: ...") on malformed input.
std::vector<Token> tokenize(std::string_view source);

}  // namespace slm::jinja::detail
