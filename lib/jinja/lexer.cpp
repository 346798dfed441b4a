#include "lib/jinja/lexer.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>

#include "lib/jinja/runtime.hpp"
#include "lib/jinja/text.hpp"
#include "slm/error.hpp"

namespace slm::jinja::detail {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Only \n, \r\n and \r are line breaks (jinja2 3.x); all become \n, and one trailing
// line break is dropped (keep_trailing_newline=False).
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Python's str.isspace() at a byte offset; returns the byte length of the space or 0.
std::size_t python_space_at(std::string_view s, std::size_t pos) {
  if (pos >= s.size()) return 0;
  const auto c = static_cast<unsigned char>(s[pos]);
  if (c < 0x80) return is_python_space(c) ? 1 : 0;
  std::size_t length = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
  if (pos + length > s.size()) return 0;
  const std::u32string decoded = decode_utf8(s.substr(pos, length));
  return decoded.size() == 1 && is_python_space(decoded[0]) ? length : 0;
}

std::size_t skip_python_space(std::string_view s, std::size_t pos) {
  while (std::size_t n = python_space_at(s, pos)) pos += n;
  return pos;
}

bool all_python_space(std::string_view s) { return skip_python_space(s, 0) == s.size(); }

// Digits joined by single underscores, `(\d+_)*\d+`; returns the end, or `pos` if none.
std::size_t scan_digits(std::string_view s, std::size_t pos) {
  std::size_t end = pos;
  std::size_t i = pos;
  while (i < s.size() && is_digit(s[i])) {
    while (i < s.size() && is_digit(s[i])) ++i;
    end = i;
    if (i + 1 < s.size() && s[i] == '_' && is_digit(s[i + 1])) ++i;
  }
  return end;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) : source_(normalize_newlines(source)) {}

  std::vector<Token> run() {
    while (pos_ < source_.size()) lex_data_and_tag();
    tokens_.push_back(Token{TokenKind::end_of_input, line_at(source_.size()), {}});
    return std::move(tokens_);
  }

 private:
  std::string source_;
  std::size_t pos_ = 0;
  bool line_starting_ = true;  // the previous match ended with a newline (or nothing matched yet)
  std::size_t counted_pos_ = 0;
  int counted_line_ = 1;
  std::vector<Token> tokens_;
  std::vector<char> brackets_;  // open brackets inside the current tag

  int line_at(std::size_t pos) {
    for (; counted_pos_ < pos && counted_pos_ < source_.size(); ++counted_pos_)
      if (source_[counted_pos_] == '\n') ++counted_line_;
    return counted_line_;
  }

  [[noreturn]] void fail(std::size_t pos, const std::string& message) {
    throw slm::Error(located_message(line_at(pos), message));
  }

  bool starts_with(std::size_t pos, std::string_view prefix) const {
    return source_.compare(pos, prefix.size(), prefix) == 0;
  }

  void push(TokenKind kind, std::size_t pos, std::string text = {}) {
    tokens_.push_back(Token{kind, line_at(pos), std::move(text)});
  }

  // Text before a tag gets the tag's whitespace control: `-` strips all whitespace,
  // lstrip_blocks strips spaces of a line holding only the tag (not for {{ }}), `+` keeps.
  void push_text(std::size_t begin, std::size_t end, char sign, bool is_variable_tag) {
    std::string_view text(source_.data() + begin, end - begin);
    if (sign == '-') {
      std::size_t keep = text.size();
      while (keep > 0) {
        std::size_t start = keep - 1;
        while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        if (python_space_at(text, start) != keep - start) break;
        keep = start;
      }
      text = text.substr(0, keep);
    } else if (sign != '+' && !is_variable_tag) {
      const std::size_t newline = text.rfind('\n');
      const std::size_t line_begin = newline == std::string_view::npos ? 0 : newline + 1;
      const std::string_view last_line = text.substr(line_begin);
      if ((line_begin > 0 || line_starting_) && !last_line.empty() && all_python_space(last_line))
        text = text.substr(0, line_begin);
    }
    if (!text.empty()) push(TokenKind::text, begin, std::string(text));
  }

  // `{%[-+]? raw \s* (-%}\s* | %})` at pos; returns the end of the tag or 0.
  std::size_t match_raw_begin(std::size_t pos) const {
    std::size_t i = pos + 2;
    if (i < source_.size() && (source_[i] == '-' || source_[i] == '+')) ++i;
    i = skip_python_space(source_, i);
    if (!starts_with(i, "raw")) return 0;
    i = skip_python_space(source_, i + 3);
    if (starts_with(i, "-%}")) return skip_python_space(source_, i + 3);
    if (starts_with(i, "%}")) return i + 2;
    return 0;
  }

  void lex_data_and_tag() {
    std::size_t tag = pos_;
    while (true) {
      tag = source_.find('{', tag);
      if (tag == std::string::npos || tag + 1 >= source_.size()) {
        push(TokenKind::text, pos_, source_.substr(pos_));
        pos_ = source_.size();
        return;
      }
      const char kind = source_[tag + 1];
      if (kind == '%' || kind == '{' || kind == '#') break;
      ++tag;
    }
    const char kind = source_[tag + 1];
    std::size_t after_open = tag + 2;
    char sign = 0;
    if (after_open < source_.size() && (source_[after_open] == '-' || source_[after_open] == '+'))
      sign = source_[after_open++];
    push_text(pos_, tag, sign, kind == '{');

    if (kind == '%') {
      if (std::size_t raw_end = match_raw_begin(tag)) {
        line_starting_ = source_[raw_end - 1] == '\n';
        lex_raw(raw_end);
        return;
      }
    }
    line_starting_ = false;
    if (kind == '#') {
      lex_comment(tag, after_open);
      return;
    }
    push(kind == '%' ? TokenKind::block_begin : TokenKind::variable_begin, tag);
    pos_ = after_open;
    lex_tag(kind == '%');
  }

  void lex_comment(std::size_t open, std::size_t from) {
    for (std::size_t i = from; i + 1 < source_.size(); ++i) {
      if (starts_with(i, "+#}")) return finish_tag(i + 3);
      if (starts_with(i, "-#}")) return finish_tag(skip_python_space(source_, i + 3));
      if (starts_with(i, "#}")) return finish_tag(trim_newline(i + 2));
    }
    fail(open, "Missing end of comment tag");
  }

  // trim_blocks: the first newline after a block or comment tag is removed.
  std::size_t trim_newline(std::size_t pos) const {
    return pos < source_.size() && source_[pos] == '\n' ? pos + 1 : pos;
  }

  void finish_tag(std::size_t end) {
    pos_ = end;
    line_starting_ = end > 0 && source_[end - 1] == '\n';
  }

  void lex_raw(std::size_t content_begin) {
    for (std::size_t i = content_begin; i + 1 < source_.size(); ++i) {
      if (!starts_with(i, "{%")) continue;
      std::size_t j = i + 2;
      char sign = 0;
      if (j < source_.size() && (source_[j] == '-' || source_[j] == '+')) sign = source_[j++];
      j = skip_python_space(source_, j);
      if (!starts_with(j, "endraw")) continue;
      j = skip_python_space(source_, j + 6);
      std::size_t end = 0;
      if (starts_with(j, "+%}")) end = j + 3;
      else if (starts_with(j, "-%}")) end = skip_python_space(source_, j + 3);
      else if (starts_with(j, "%}")) end = trim_newline(j + 2);
      else continue;
      push_text(content_begin, i, sign, false);
      return finish_tag(end);
    }
    fail(content_begin, "Missing end of raw directive");
  }

  // Tokens inside {{ }} or {% %}, up to the closing tag (only when brackets are balanced).
  void lex_tag(bool is_block) {
    while (pos_ < source_.size()) {
      if (brackets_.empty()) {
        if (is_block) {
          if (starts_with(pos_, "+%}")) return close_tag(TokenKind::block_end, pos_ + 3);
          if (starts_with(pos_, "-%}")) return close_tag(TokenKind::block_end, skip_python_space(source_, pos_ + 3));
          if (starts_with(pos_, "%}")) return close_tag(TokenKind::block_end, trim_newline(pos_ + 2));
        } else {
          if (starts_with(pos_, "-}}")) return close_tag(TokenKind::variable_end, skip_python_space(source_, pos_ + 3));
          if (starts_with(pos_, "}}")) return close_tag(TokenKind::variable_end, pos_ + 2);
        }
      }
      if (std::size_t space = skip_python_space(source_, pos_); space != pos_) {
        pos_ = space;
        continue;
      }
      if (lex_number() || lex_name() || lex_string() || lex_operator()) continue;
      fail(pos_, fmt::format("unexpected char '{}' at {}", source_[pos_], pos_));
    }
    fail(pos_, is_block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'");
  }

  void close_tag(TokenKind kind, std::size_t end) {
    push(kind, pos_);
    finish_tag(end);
  }

  bool lex_number() {
    const std::size_t start = pos_;
    if (!is_digit(source_[start])) return false;
    // Float first, as jinja: digits with a fraction and/or an exponent, not right after a dot.
    if (start == 0 || source_[start - 1] != '.') {
      std::size_t i = scan_digits(source_, start);
      bool is_float = false;
      if (i < source_.size() && source_[i] == '.' && i + 1 < source_.size() && is_digit(source_[i + 1])) {
        i = scan_digits(source_, i + 1);
        is_float = true;
      }
      if (i < source_.size() && (source_[i] == 'e' || source_[i] == 'E')) {
        std::size_t j = i + 1;
        if (j < source_.size() && (source_[j] == '+' || source_[j] == '-')) ++j;
        if (std::size_t end = scan_digits(source_, j); end != j) {
          i = end;
          is_float = true;
        }
      }
      if (is_float) {
        std::string digits;
        for (std::size_t k = start; k < i; ++k)
          if (source_[k] != '_') digits.push_back(source_[k]);
        push(TokenKind::floating, start, source_.substr(start, i - start));
        tokens_.back().floating = std::strtod(digits.c_str(), nullptr);
        pos_ = i;
        return true;
      }
    }
    int base = 10;
    std::size_t digits_begin = start;
    std::size_t end = start;
    if (source_[start] == '0' && start + 2 < source_.size()) {
      const char prefix = static_cast<char>(source_[start + 1] | 0x20);
      base = prefix == 'b' ? 2 : prefix == 'o' ? 8 : prefix == 'x' ? 16 : 10;
    }
    auto in_base = [&](char c) {
      if (base == 2) return c == '0' || c == '1';
      if (base == 8) return c >= '0' && c <= '7';
      if (base == 16) return is_hex(c);
      return is_digit(c);
    };
    if (base != 10) {
      digits_begin = start + 2;
      end = digits_begin;
      while (end < source_.size() && (in_base(source_[end]) || (source_[end] == '_' && end + 1 < source_.size() && in_base(source_[end + 1]))))
        ++end;
      if (end == digits_begin) base = 10;  // "0b" without digits: the integer 0, then a name
    }
    if (base == 10) {
      digits_begin = start;
      if (source_[start] == '0') {  // 0(_?0)*
        end = start + 1;
        while (end < source_.size() && (source_[end] == '0' || (source_[end] == '_' && end + 1 < source_.size() && source_[end + 1] == '0')))
          ++end;
      } else {
        end = scan_digits(source_, start);
      }
    }
    std::string digits;
    for (std::size_t k = digits_begin; k < end; ++k)
      if (source_[k] != '_') digits.push_back(source_[k]);
    errno = 0;
    const unsigned long long value = std::strtoull(digits.c_str(), nullptr, base);
    if (errno == ERANGE || value > static_cast<unsigned long long>(INT64_MAX))
      fail(start, fmt::format("integer literal {} is too large (64-bit integers only)", source_.substr(start, end - start)));
    push(TokenKind::integer, start, source_.substr(start, end - start));
    tokens_.back().integer = static_cast<std::int64_t>(value);
    pos_ = end;
    return true;
  }

  bool lex_name() {
    if (!is_name_start(source_[pos_])) return false;
    std::size_t end = pos_ + 1;
    while (end < source_.size() && is_name_char(source_[end])) ++end;
    push(TokenKind::name, pos_, source_.substr(pos_, end - pos_));
    pos_ = end;
    return true;
  }

  bool lex_string() {
    const char quote = source_[pos_];
    if (quote != '\'' && quote != '"') return false;
    std::size_t i = pos_ + 1;
    while (i < source_.size() && source_[i] != quote) i += source_[i] == '\\' ? 2 : 1;
    if (i >= source_.size()) return false;  // unterminated: reported as an unexpected char
    push(TokenKind::string, pos_, unescape(pos_ + 1, i));
    pos_ = i + 1;
    return true;
  }

  // Python's unicode-escape decoding of a string literal's body.
  std::string unescape(std::size_t begin, std::size_t end) {
    std::string out;
    std::size_t i = begin;
    auto hex_escape = [&](std::size_t digits, const char* what) {
      if (i + digits > end) fail(begin, fmt::format("truncated {} escape", what));
      char32_t value = 0;
      for (std::size_t k = 0; k < digits; ++k) {
        const char c = source_[i + k];
        if (!is_hex(c)) fail(begin, fmt::format("truncated {} escape", what));
        value = value * 16 + static_cast<char32_t>(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
      }
      if (value > 0x10FFFF) fail(begin, "illegal Unicode character");
      i += digits;
      append_utf8(out, value);
    };
    while (i < end) {
      const char c = source_[i];
      if (c != '\\') {
        out.push_back(c);
        ++i;
        continue;
      }
      const char e = source_[i + 1];
      i += 2;
      switch (e) {
        case '\n': break;  // line continuation
        case '\\': out.push_back('\\'); break;
        case '\'': out.push_back('\''); break;
        case '"': out.push_back('"'); break;
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'v': out.push_back('\v'); break;
        case 'x': hex_escape(2, "\\xXX"); break;
        case 'u': hex_escape(4, "\\uXXXX"); break;
        case 'U': hex_escape(8, "\\UXXXXXXXX"); break;
        case 'N': fail(begin, "unsupported construct: \\N{...} escape in a string literal");
        default:
          if (e >= '0' && e <= '7') {
            char32_t value = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && i < end && source_[i] >= '0' && source_[i] <= '7'; ++k)
              value = value * 8 + static_cast<char32_t>(source_[i++] - '0');
            append_utf8(out, value);
          } else if (static_cast<unsigned char>(e) >= 0x80) {
            // Python first backslash-escapes non-ASCII text, so "\é" becomes "\xe9" literally.
            std::size_t char_end = i;
            while (char_end < end && (static_cast<unsigned char>(source_[char_end]) & 0xC0) == 0x80) ++char_end;
            const std::u32string decoded = decode_utf8(std::string_view(source_).substr(i - 1, char_end - i + 1));
            const auto cp = static_cast<unsigned>(decoded.empty() ? 0 : decoded[0]);
            out += cp < 0x100 ? fmt::format("\\x{:02x}", cp) : cp < 0x10000 ? fmt::format("\\u{:04x}", cp) : fmt::format("\\U{:08x}", cp);
            i = char_end;
          } else {
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    return out;
  }

  bool lex_operator() {
    static constexpr std::string_view two_char[] = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : two_char) {
      if (starts_with(pos_, op)) {
        push(TokenKind::op, pos_, std::string(op));
        pos_ += 2;
        return true;
      }
    }
    const char c = source_[pos_];
    if (std::string_view("+-/*%~[](){}=<>.:|,;").find(c) == std::string_view::npos) return false;
    if (c == '(' || c == '[' || c == '{') {
      brackets_.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (brackets_.empty()) fail(pos_, fmt::format("unexpected '{}'", c));
      if (brackets_.back() != c) fail(pos_, fmt::format("unexpected '{}', expected '{}'", c, brackets_.back()));
      brackets_.pop_back();
    }
    push(TokenKind::op, pos_, std::string(1, c));
    ++pos_;
    return true;
  }
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace slm::jinja::detail
