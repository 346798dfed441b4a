#include "lib/tokenizer/llama_regex.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>

#include "lib/tokenizer/unicode.hpp"
#include "slm/error.hpp"

namespace slm::tokenizer {

namespace {

struct CodepointRange {
  uint32_t first = 0;
  uint32_t last = 0;
};

// Unicode White_Space above ASCII: what llama.cpp's splitter counts as whitespace there.
constexpr CodepointRange kNonAsciiWhitespace[] = {{0x85, 0x85},     {0xA0, 0xA0},     {0x1680, 0x1680},
                                                  {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F},
                                                  {0x205F, 0x205F}, {0x3000, 0x3000}};

bool is_non_ascii_whitespace(uint32_t codepoint) {
  for (const auto& range : kNonAsciiWhitespace) {
    if (codepoint >= range.first && codepoint <= range.last) return true;
  }
  return false;
}

std::string hex_escape(uint32_t codepoint) { return fmt::format("\\x{{{:X}}}", codepoint); }

std::string range_text(uint32_t first, uint32_t last) {
  return first == last ? hex_escape(first) : hex_escape(first) + "-" + hex_escape(last);
}

// The members of a class matching what llama.cpp's \s matches: ASCII \t \n \v \f \r and space,
// and (as U+000B in its text) every non-ASCII White_Space character.
const std::string& whitespace_class_members() {
  static const std::string members = [] {
    std::string text = R"(\t\n\x{B}\f\r\x{20})";
    for (const auto& range : kNonAsciiWhitespace) text += range_text(range.first, range.last);
    return text;
  }();
  return members;
}

// One element of a pattern: a character (with its codepoint), an escape standing for a class
// (\s, \p{L}, \d, ...), or any other escape or character.
struct Atom {
  std::string text;                    // as written
  std::optional<uint32_t> codepoint;   // set when the atom is one character
  char escape = 0;                     // the letter after '\', 0 for an unescaped character
  std::string property;                // the category name of \p{..}
};

class PatternScanner {
 public:
  explicit PatternScanner(std::string_view pattern) : pattern_(pattern) {}

  bool done() const { return position_ >= pattern_.size(); }
  char peek(size_t ahead = 0) const {
    return position_ + ahead < pattern_.size() ? pattern_[position_ + ahead] : '\0';
  }
  void skip(size_t count = 1) { position_ += count; }

  Atom next_atom() {
    const size_t begin = position_;
    Atom atom;
    if (peek() != '\\') {
      const auto codepoint = decode_utf8_strict(pattern_, position_);
      if (!codepoint) fail("invalid UTF-8");
      atom.codepoint = codepoint;
      atom.text = pattern_.substr(begin, position_ - begin);
      return atom;
    }
    atom.escape = peek(1);
    skip(2);
    switch (atom.escape) {
      case 'p':
      case 'P': {
        const size_t close = pattern_.find('}', position_);
        if (peek() != '{' || close == std::string_view::npos) fail("\\p without {name}");
        atom.property = pattern_.substr(position_ + 1, close - position_ - 1);
        position_ = close + 1;
        break;
      }
      case 'x': {
        size_t digits_begin = position_, digits_end = position_ + 2;
        if (peek() == '{') {
          digits_begin = position_ + 1;
          digits_end = pattern_.find('}', position_);
          if (digits_end == std::string_view::npos) fail("\\x{ without }");
          position_ = digits_end + 1;
        } else {
          position_ = digits_end;
        }
        const std::string_view digits = pattern_.substr(digits_begin, digits_end - digits_begin);
        uint32_t codepoint = 0;
        const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), codepoint, 16);
        if (digits.empty() || error != std::errc() || end != digits.data() + digits.size()) fail("bad \\x escape");
        atom.codepoint = codepoint;
        break;
      }
      case 't': atom.codepoint = '\t'; break;
      case 'n': atom.codepoint = '\n'; break;
      case 'r': atom.codepoint = '\r'; break;
      case 'f': atom.codepoint = '\f'; break;
      default:
        // An escaped punctuation character is that character; letters are classes or
        // assertions (\s \S \d \w \b ...) and have no single codepoint.
        if (!std::isalnum(static_cast<unsigned char>(atom.escape))) atom.codepoint = static_cast<uint8_t>(atom.escape);
        break;
    }
    atom.text = pattern_.substr(begin, position_ - begin);
    return atom;
  }

  [[noreturn]] void fail(std::string_view what) const {
    throw Error(fmt::format("pre-tokenizer regex: {} at offset {} (pattern {})", what, position_, pattern_));
  }

 private:
  std::string_view pattern_;
  size_t position_ = 0;
};

bool is_letter_subcategory(std::string_view name) {
  return name == "Lu" || name == "Ll" || name == "Lt" || name == "Lm" || name == "Lo";
}

// \p{..} as llama.cpp knows it (its k_ucat_enum), rewritten; \p{S} is left to the caller.
std::string translate_property(const PatternScanner& scanner, const Atom& atom) {
  if (atom.escape == 'P') scanner.fail("\\P{..} is not in llama.cpp's regex dialect");
  if (is_letter_subcategory(atom.property)) return R"(\p{L})";
  if (atom.property == "L" || atom.property == "N" || atom.property == "P" || atom.property == "M" ||
      atom.property == "S") {
    return atom.text;
  }
  scanner.fail("\\p{" + atom.property + "} is not a category llama.cpp knows");
}

// A class member range without the non-ASCII whitespace it covers.
std::string range_without_whitespace(uint32_t first, uint32_t last) {
  std::string text;
  uint32_t run_begin = first;
  for (const auto& whitespace : kNonAsciiWhitespace) {
    if (whitespace.last < run_begin || whitespace.first > last) continue;
    if (whitespace.first > run_begin) text += range_text(run_begin, whitespace.first - 1);
    run_begin = whitespace.last + 1;
  }
  if (run_begin <= last) text += range_text(run_begin, last);
  return text;
}

bool covers_non_ascii_whitespace(uint32_t first, uint32_t last) {
  for (const auto& whitespace : kNonAsciiWhitespace) {
    if (whitespace.first <= last && whitespace.last >= first) return true;
  }
  return false;
}

// The scanner stands just past '['. Returns the class rewritten, past its ']'.
std::string translate_class(PatternScanner& scanner) {
  const bool negated = scanner.peek() == '^';
  if (negated) scanner.skip();
  std::string members;
  bool has_symbols = false;
  bool lists_tilde = false;
  bool first_member = true;
  while (true) {
    if (scanner.done()) scanner.fail("unterminated character class");
    if (scanner.peek() == ']' && !first_member) {
      scanner.skip();
      break;
    }
    first_member = false;
    const Atom atom = scanner.next_atom();
    if (atom.escape == 's') {
      members += whitespace_class_members();
    } else if (atom.escape == 'S') {
      scanner.fail("\\S inside a character class");
    } else if (!atom.property.empty()) {
      members += translate_property(scanner, atom);
      has_symbols |= atom.property == "S";
    } else if (atom.codepoint) {
      uint32_t last = *atom.codepoint;
      std::string text = atom.text;
      if (scanner.peek() == '-' && scanner.peek(1) != ']') {
        scanner.skip();
        const Atom range_end = scanner.next_atom();
        if (!range_end.codepoint) scanner.fail("a range must end in a character");
        last = *range_end.codepoint;
        text += "-" + range_end.text;
      }
      lists_tilde |= *atom.codepoint <= '~' && last >= '~';
      members += covers_non_ascii_whitespace(*atom.codepoint, last) ? range_without_whitespace(*atom.codepoint, last)
                                                                     : text;
    } else {
      members += atom.text;  // \d, \w: ASCII without PCRE2_UCP, as in std::regex
    }
  }
  const std::string bracketed = std::string(negated ? "[^" : "[") + members + "]";
  if (!has_symbols) return bracketed;
  if (lists_tilde) scanner.fail("'~' in a class with \\p{S}");
  // llama.cpp's \p{S} lacks '~', so a class naming it never matches '~' and its complement does.
  return negated ? "(?:~|" + bracketed + ")" : "(?:(?!~)" + bracketed + ")";
}

}  // namespace

std::string translate_llama_regex(std::string_view pattern) {
  PatternScanner scanner(pattern);
  std::string out;
  out.reserve(pattern.size() + 128);
  while (!scanner.done()) {
    if (scanner.peek() == '[') {
      scanner.skip();
      out += translate_class(scanner);
      continue;
    }
    const Atom atom = scanner.next_atom();
    if (atom.escape == 's') {
      out += "[" + whitespace_class_members() + "]";
    } else if (atom.escape == 'S') {
      out += "[^" + whitespace_class_members() + "]";
    } else if (!atom.property.empty()) {
      const std::string property = translate_property(scanner, atom);
      out += atom.property == "S" ? "(?:(?!~)" + property + ")" : property;
    } else {
      if (atom.codepoint && is_non_ascii_whitespace(*atom.codepoint)) {
        scanner.fail("a non-ASCII whitespace character outside a class");
      }
      out += atom.text;
    }
  }
  return out;
}

}  // namespace slm::tokenizer
