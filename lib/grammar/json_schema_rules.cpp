#include "lib/grammar/json_schema_rules.hpp"

#include <fmt/format.h>

#include "lib/grammar/utf8_ranges.hpp"
#include "slm/error.hpp"

namespace slm::grammar {

const std::vector<std::pair<std::string, std::string>>& primitive_rules() {
  static const std::vector<std::pair<std::string, std::string>> rules = {
      {"value", "object | array | string | number | boolean | null"},
      {"object", R"("{" ( string ":" sp value ( "," sp string ":" sp value )* )? "}")"},
      {"array", R"("[" ( value ( "," sp value )* )? "]")"},
      {"string", R"("\"" char* "\"")"},
      {"char", R"([^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ))"},
      {"key-char", R"([^"\\\x00-\x1F])"},
      {"number", R"(integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?)"},
      {"integer", R"("-"? ( "0" | [1-9] [0-9]{0,15} ))"},
      {"boolean", R"("true" | "false")"},
      {"null", R"("null")"},
      {"sp", R"(" "?)"},
      // Days 01-28 only: every generated date exists.
      {"format-date", R"([0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ))"},
      {"format-time",
       R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))"},
      {"format-date-time", R"(format-date "T" format-time)"},
      {"format-uuid", R"([0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12})"},
      {"format-email",
       R"([a-zA-Z0-9_+-]{1,20} ( "." [a-zA-Z0-9_+-]{1,20} ){0,2} "@" [a-zA-Z0-9] [a-zA-Z0-9-]{0,20} ( "." [a-zA-Z]{2,10} ){1,2})"},
  };
  return rules;
}

std::vector<std::string> primitive_dependencies(const std::string& name) {
  if (name == "value") return {"object", "array", "string", "number", "boolean", "null", "sp"};
  if (name == "object") return {"string", "value", "sp"};
  if (name == "array") return {"value", "sp"};
  if (name == "string") return {"char"};
  if (name == "number") return {"integer"};
  if (name == "format-date-time") return {"format-date", "format-time"};
  return {};
}

std::string gbnf_literal(const std::string& bytes) {
  std::string out = "\"";
  for (unsigned char c : bytes) {
    if (c == '"' || c == '\\') out += {'\\', char(c)};
    else if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02X}", c);
    else out += char(c);
  }
  return out + "\"";
}

std::string json_literal(const nlohmann::ordered_json& value) {
  return gbnf_literal(value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::strict));
}

std::string gbnf_class_char(const std::string& utf8_char) {
  if (utf8_char.size() == 1) {
    const unsigned char c = static_cast<unsigned char>(utf8_char[0]);
    if (c == ']' || c == '[' || c == '\\' || c == '-' || c == '^' || c == '"') return std::string("\\") + char(c);
    if (c < 0x20 || c == 0x7F) return fmt::format("\\x{:02X}", c);
  }
  return utf8_char;
}

namespace {

std::string all_digits(char d, size_t n) { return std::string(n, d); }

// Same-length decimal strings lo <= hi, leading zeros allowed after the first digit.
std::string fixed_length_range(const std::string& lo, const std::string& hi) {
  if (lo.empty()) return "";
  const size_t rest = lo.size() - 1;
  const auto tail = [&](const std::string& expression) { return expression.empty() ? "" : " " + expression; };
  if (lo[0] == hi[0]) return fmt::format("\"{}\"{}", lo[0], tail(fixed_length_range(lo.substr(1), hi.substr(1))));
  if (lo.substr(1) == all_digits('0', rest) && hi.substr(1) == all_digits('9', rest))
    return fmt::format("[{}-{}]{}", lo[0], hi[0], rest ? fmt::format(" [0-9]{{{}}}", rest) : "");
  std::vector<std::string> alternatives;
  alternatives.push_back(fmt::format("\"{}\"{}", lo[0], tail(fixed_length_range(lo.substr(1), all_digits('9', rest)))));
  if (hi[0] - lo[0] > 1)
    alternatives.push_back(fmt::format("[{}-{}]{}", char(lo[0] + 1), char(hi[0] - 1), rest ? fmt::format(" [0-9]{{{}}}", rest) : ""));
  alternatives.push_back(fmt::format("\"{}\"{}", hi[0], tail(fixed_length_range(all_digits('0', rest), hi.substr(1)))));
  std::string out = "(";
  for (size_t i = 0; i < alternatives.size(); ++i) out += (i ? " | " : " ") + alternatives[i];
  return out + " )";
}

// 0 <= lo <= hi.
std::string non_negative_range(uint64_t lo, uint64_t hi) {
  const std::string a = std::to_string(lo), b = std::to_string(hi);
  std::vector<std::string> alternatives;
  for (size_t length = a.size(); length <= b.size(); ++length) {
    const std::string from = length == a.size() ? a : "1" + all_digits('0', length - 1);
    const std::string to = length == b.size() ? b : all_digits('9', length);
    alternatives.push_back(fixed_length_range(from, to));
  }
  std::string out = "(";
  for (size_t i = 0; i < alternatives.size(); ++i) out += (i ? " | " : " ") + alternatives[i];
  return out + " )";
}

constexpr uint64_t max_integer = 9999999999999999ull;  // 16 digits, as the 'integer' rule

}  // namespace

std::string integer_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  const int64_t low = lo.value_or(-int64_t(max_integer)), high = hi.value_or(int64_t(max_integer));
  std::vector<std::string> alternatives;
  if (low < 0) {  // the negative part: -(magnitudes in [max(1, -high), -low])
    const uint64_t from = high < 0 ? uint64_t(-high) : 1, to = uint64_t(-low);
    alternatives.push_back("\"-\" " + non_negative_range(from, to));
  }
  if (high >= 0) alternatives.push_back(non_negative_range(uint64_t(std::max<int64_t>(low, 0)), uint64_t(high)));
  std::string out;
  for (size_t i = 0; i < alternatives.size(); ++i) out += (i ? " | " : "") + alternatives[i];
  return out;
}

namespace {

// What may appear unescaped inside a JSON string: no control characters, '"' or '\'.
std::vector<CodepointRange> json_safe(std::vector<CodepointRange> ranges) {
  const std::vector<CodepointRange> unsafe = normalize_ranges({{0, 0x1F}, {'"', '"'}, {'\\', '\\'}, {0x7F, 0x7F}});
  // A & ~U = ~(~A | U)
  std::vector<CodepointRange> outside = complement_ranges(normalize_ranges(std::move(ranges)));
  outside.insert(outside.end(), unsafe.begin(), unsafe.end());
  return complement_ranges(normalize_ranges(outside));
}

std::string class_from_ranges(const std::vector<CodepointRange>& ranges) {
  if (ranges.empty()) return "";
  std::string out = "[";
  for (CodepointRange r : ranges) {
    out += fmt::format("\\U{:08X}", r.lo);
    if (r.hi != r.lo) out += fmt::format("-\\U{:08X}", r.hi);
  }
  return out + "]";
}

class RegexConverter {
 public:
  RegexConverter(const std::string& pattern, const GrammarLimits& limits) : p_(pattern), limits_(limits) {}

  std::string convert() {
    bool anchored_start = false, anchored_end = false;
    if (!p_.empty() && p_[0] == '^') {
      anchored_start = true;
      ++pos_;
    }
    std::string body = alternation(0);
    if (pos_ < p_.size() && p_[pos_] == '$' && pos_ + 1 == p_.size()) {
      anchored_end = true;
      ++pos_;
    }
    if (pos_ != p_.size()) fail(fmt::format("unexpected '{}' at offset {}", p_[pos_], pos_));
    return fmt::format("{}{}{}", anchored_start ? "" : "char* ", body.empty() ? "\"\"" : body, anchored_end ? "" : " char*");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(fmt::format("JSON schema: unsupported keyword 'pattern' feature in '{}': {}", p_, what));
  }

  std::string alternation(int depth) {
    if (depth > limits_.max_nesting) fail("groups nested too deeply");
    std::vector<std::string> branches{sequence(depth)};
    while (pos_ < p_.size() && p_[pos_] == '|') {
      ++pos_;
      branches.push_back(sequence(depth));
    }
    if (branches.size() == 1) return branches[0];
    std::string out = "(";
    for (size_t i = 0; i < branches.size(); ++i) out += (i ? " | " : " ") + (branches[i].empty() ? "\"\"" : branches[i]);
    return out + " )";
  }

  std::string sequence(int depth) {
    std::string out;
    while (pos_ < p_.size() && p_[pos_] != '|' && p_[pos_] != ')') {
      if (p_[pos_] == '$' && pos_ + 1 == p_.size()) break;
      std::string item = atom(depth);
      item = quantified("( " + item + " )");
      out += (out.empty() ? "" : " ") + item;
    }
    return out;
  }

  std::string quantified(const std::string& item) {
    if (pos_ >= p_.size()) return item;
    const char c = p_[pos_];
    std::string suffix;
    if (c == '*' || c == '+' || c == '?') {
      ++pos_;
      suffix = std::string(1, c);
    } else if (c == '{') {
      const size_t close = p_.find('}', pos_);
      if (close == std::string::npos) fail("unterminated {");
      suffix = p_.substr(pos_, close - pos_ + 1);
      for (char d : suffix.substr(1, suffix.size() - 2))
        if (!(std::isdigit(static_cast<unsigned char>(d)) || d == ',')) fail("bad repetition " + suffix);
      pos_ = close + 1;
    } else {
      return item;
    }
    if (pos_ < p_.size() && (p_[pos_] == '?' || p_[pos_] == '+')) fail("lazy or possessive quantifiers");
    if (pos_ < p_.size() && (p_[pos_] == '*' || p_[pos_] == '{')) fail("a quantifier after a quantifier");
    return item + suffix;
  }

  uint32_t next_codepoint() {
    const unsigned char c = static_cast<unsigned char>(p_[pos_]);
    const int length = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (pos_ + size_t(length) > p_.size()) fail("invalid UTF-8");
    uint32_t cp = length == 1 ? c : c & (0x7F >> length);
    for (int i = 1; i < length; ++i) cp = cp << 6 | (static_cast<unsigned char>(p_[pos_ + size_t(i)]) & 0x3F);
    pos_ += size_t(length);
    return cp;
  }

  // A class escape (\d \w \s and their negations) as ranges, or nullopt for a literal escape.
  std::optional<std::vector<CodepointRange>> class_escape(char e) {
    switch (e) {
      case 'd': return std::vector<CodepointRange>{{'0', '9'}};
      case 'w': return std::vector<CodepointRange>{{'a', 'z'}, {'A', 'Z'}, {'0', '9'}, {'_', '_'}};
      case 's': return std::vector<CodepointRange>{{' ', ' '}};
      case 'D': return complement_ranges(normalize_ranges({{'0', '9'}}));
      case 'W': return complement_ranges(normalize_ranges({{'a', 'z'}, {'A', 'Z'}, {'0', '9'}, {'_', '_'}}));
      case 'S': return complement_ranges(normalize_ranges({{' ', ' '}, {'\t', '\r'}}));
      default: return std::nullopt;
    }
  }

  uint32_t literal_escape(char e) {
    switch (e) {
      case 'n': return '\n';
      case 't': return '\t';
      case 'r': return '\r';
      case 'f': return '\f';
      case 'v': return '\v';
      default:
        if (std::isalnum(static_cast<unsigned char>(e))) fail(fmt::format("the escape \\{}", e));
        return uint32_t(static_cast<unsigned char>(e));
    }
  }

  // A literal code point as the bytes of its JSON string form.
  static std::string literal(uint32_t cp) {
    if (cp == '"') return gbnf_literal("\\\"");
    if (cp == '\\') return gbnf_literal("\\\\");
    if (cp == '\n') return gbnf_literal("\\n");
    if (cp == '\t') return gbnf_literal("\\t");
    if (cp == '\r') return gbnf_literal("\\r");
    if (cp < 0x20) return gbnf_literal(fmt::format("\\u{:04x}", cp));
    std::vector<uint8_t> bytes;
    append_utf8(bytes, cp);
    return gbnf_literal(std::string(bytes.begin(), bytes.end()));
  }

  std::string ranges_item(const std::vector<CodepointRange>& ranges) {
    const std::string cls = class_from_ranges(json_safe(ranges));
    if (cls.empty()) fail("a class that only holds characters JSON must escape");
    return cls;
  }

  std::string atom(int depth) {
    const char c = p_[pos_];
    if (c == '(') {
      ++pos_;
      if (p_.compare(pos_, 2, "?:") == 0) pos_ += 2;
      else if (pos_ < p_.size() && p_[pos_] == '?') fail("lookaround and named groups");
      std::string inner = alternation(depth + 1);
      if (pos_ >= p_.size() || p_[pos_] != ')') fail("unbalanced parentheses");
      ++pos_;
      return inner.empty() ? "\"\"" : inner;
    }
    if (c == '[') return character_class();
    if (c == '.') {
      ++pos_;
      return ranges_item({{0, 0x10FFFF}});
    }
    if (c == '*' || c == '+' || c == '?' || c == '{') fail(fmt::format("'{}' with nothing to repeat", c));
    if (c == '^' || c == '$') fail("anchors other than ^ at the start and $ at the end");
    if (c == '\\') {
      if (pos_ + 1 >= p_.size()) fail("a trailing backslash");
      const char e = p_[pos_ + 1];
      pos_ += 2;
      if (e == 'b' || e == 'B') fail("word boundaries");
      if (std::isdigit(static_cast<unsigned char>(e))) fail("backreferences");
      if (auto ranges = class_escape(e)) return ranges_item(*ranges);
      return literal(literal_escape(e));
    }
    return literal(next_codepoint());
  }

  std::string character_class() {
    ++pos_;
    bool negated = false;
    if (pos_ < p_.size() && p_[pos_] == '^') {
      negated = true;
      ++pos_;
    }
    std::vector<CodepointRange> ranges;
    bool first = true;
    while (pos_ < p_.size() && (p_[pos_] != ']' || first)) {
      first = false;
      uint32_t lo;
      if (p_[pos_] == '\\') {
        if (pos_ + 1 >= p_.size()) fail("a trailing backslash");
        const char e = p_[pos_ + 1];
        pos_ += 2;
        if (auto escaped = class_escape(e)) {
          ranges.insert(ranges.end(), escaped->begin(), escaped->end());
          continue;
        }
        lo = literal_escape(e);
      } else {
        lo = next_codepoint();
      }
      uint32_t hi = lo;
      if (pos_ + 1 < p_.size() && p_[pos_] == '-' && p_[pos_ + 1] != ']') {
        ++pos_;
        if (p_[pos_] == '\\') {
          if (pos_ + 1 >= p_.size()) fail("a trailing backslash");
          hi = literal_escape(p_[pos_ + 1]);
          pos_ += 2;
        } else {
          hi = next_codepoint();
        }
        if (hi < lo) fail("a reversed range");
      }
      ranges.push_back({lo, hi});
    }
    if (pos_ >= p_.size()) fail("unterminated class");
    ++pos_;
    std::vector<CodepointRange> normalized = normalize_ranges(ranges);
    return ranges_item(negated ? complement_ranges(normalized) : normalized);
  }

  const std::string& p_;
  const GrammarLimits& limits_;
  size_t pos_ = 0;
};

}  // namespace

std::string regex_to_gbnf(const std::string& pattern, const GrammarLimits& limits) {
  return RegexConverter(pattern, limits).convert();
}

}  // namespace slm::grammar
