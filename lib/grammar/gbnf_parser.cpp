// GBNF (llama.cpp's grammar format) -> CompiledGrammar.
//
//   root  ::= item ("," item)*      # a comment
//   item  ::= [a-z]+ | "\"" [^"\\]* "\"" | "x"{2,5} | ( "a" | "b" )? | .
//
// As in llama.cpp: a rule ends at the end of its line unless inside parentheses or after '|';
// escapes are \n \r \t \\ \" \[ \] \- \xHH \uHHHH \UHHHHHHHH (code points, written as UTF-8).
// Everything is iterative or bounded by GrammarLimits::max_nesting, so hostile text gets an
// error, never a deep recursion.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <unordered_map>

#include "lib/grammar/compiled_grammar.hpp"
#include "lib/grammar/grammar_compile.hpp"
#include "lib/grammar/utf8_ranges.hpp"
#include "slm/error.hpp"
#include "slm/grammar.hpp"

namespace slm {

namespace grammar {

namespace {

using Sequence = std::vector<Element>;
using Alternatives = std::vector<Sequence>;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

class GbnfParser {
 public:
  GbnfParser(std::string_view text, const GrammarLimits& limits) : text_(text), limits_(limits) {}

  CompiledGrammar parse() {
    if (text_.size() > limits_.max_text_bytes)
      throw Error(fmt::format("grammar: the text has {} bytes, more than the limit of {}", text_.size(), limits_.max_text_bytes));
    skip_space(true);
    while (pos_ < text_.size()) {
      parse_rule();
      skip_space(true);
    }
    for (size_t r = 0; r < rules_.size(); ++r)
      if (!defined_[r]) fail_at(first_use_[r], fmt::format("rule '{}' is used but never defined", names_[r]));
    const auto root = index_.find("root");
    if (root == index_.end()) throw Error("grammar: there is no rule 'root'");
    return finish(root->second);
  }

 private:
  [[noreturn]] void fail_at(size_t at, const std::string& message) const {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    throw Error(fmt::format("grammar: line {}, column {}: {}", line, column, message));
  }
  [[noreturn]] void fail(const std::string& message) const { fail_at(pos_, message); }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void skip_space(bool newline_ok) {
    while (!at_end()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t') {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && text_[pos_] != '\n') ++pos_;
      } else if (newline_ok && (c == '\n' || c == '\r')) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  std::string_view parse_name() {
    const size_t start = pos_;
    while (!at_end() && is_name_char(text_[pos_])) ++pos_;
    if (pos_ == start) fail(fmt::format("expected a rule name, found {}", describe_here()));
    return text_.substr(start, pos_ - start);
  }

  std::string describe_here() const {
    if (at_end()) return "the end of the text";
    const unsigned char c = static_cast<unsigned char>(text_[pos_]);
    return c >= 0x20 && c < 0x7F ? fmt::format("'{}'", char(c)) : fmt::format("byte 0x{:02X}", c);
  }

  int32_t rule_index(std::string_view name, size_t used_at) {
    const auto found = index_.find(name);
    if (found != index_.end()) return found->second;
    const int32_t index = int32_t(rules_.size());
    index_.emplace(std::string(name), index);
    names_.emplace_back(name);
    rules_.emplace_back();
    defined_.push_back(false);
    first_use_.push_back(used_at);
    return index;
  }

  int32_t new_rule(const std::string& base, Alternatives alternatives) {
    std::string name;
    do name = fmt::format("{}_{}", base, ++synthetic_count_);
    while (index_.count(name));
    const int32_t index = rule_index(name, pos_);
    rules_[size_t(index)] = std::move(alternatives);
    defined_[size_t(index)] = true;
    return index;
  }

  int32_t byte_set_index(const ByteSet& set) {
    const auto found = byte_set_index_.find(set);
    if (found != byte_set_index_.end()) return found->second;
    const int32_t index = int32_t(byte_sets_.size());
    byte_sets_.push_back(set);
    byte_set_index_.emplace(set, index);
    return index;
  }

  Element single_byte(uint8_t byte) {
    ByteSet set{};
    byte_set_add_range(set, byte, byte);
    return {ElementKind::Bytes, byte_set_index(set)};
  }

  void count_elements(size_t n) {
    element_count_ += n;
    if (element_count_ > limits_.max_elements)
      fail(fmt::format("the grammar grows beyond {} elements", limits_.max_elements));
  }

  void parse_rule() {
    const size_t name_at = pos_;
    const std::string name(parse_name());
    skip_space(false);
    if (text_.substr(pos_, 3) != "::=") fail(fmt::format("expected '::=' after rule name '{}', found {}", name, describe_here()));
    pos_ += 3;
    skip_space(true);
    const int32_t index = rule_index(name, name_at);
    if (defined_[size_t(index)]) fail_at(name_at, fmt::format("rule '{}' is defined twice", name));
    defined_[size_t(index)] = true;
    current_rule_ = name;
    Alternatives alternatives = parse_alternatives(false);
    rules_[size_t(index)] = std::move(alternatives);
    if (!at_end() && text_[pos_] == '\r') ++pos_;
    if (!at_end() && text_[pos_] != '\n') fail(fmt::format("expected the end of the line, found {}", describe_here()));
  }

  Alternatives parse_alternatives(bool nested) {
    Alternatives alternatives;
    alternatives.push_back(parse_sequence(nested));
    while (peek() == '|') {
      ++pos_;
      skip_space(true);
      alternatives.push_back(parse_sequence(nested));
    }
    return alternatives;
  }

  Sequence parse_sequence(bool nested) {
    Sequence sequence;
    size_t last_item = SIZE_MAX;  // where the last item (the operand of a repetition) starts
    while (!at_end()) {
      const char c = text_[pos_];
      const size_t item_start = sequence.size();
      if (c == '"') {
        ++pos_;
        parse_string_literal(sequence);
        last_item = item_start;
      } else if (c == '[') {
        ++pos_;
        sequence.push_back(parse_class());
        last_item = item_start;
      } else if (is_name_char(c)) {
        const size_t at = pos_;
        sequence.push_back({ElementKind::RuleRef, rule_index(parse_name(), at)});
        last_item = item_start;
      } else if (c == '(') {
        if (++depth_ > limits_.max_nesting) fail(fmt::format("parentheses nested deeper than {}", limits_.max_nesting));
        ++pos_;
        skip_space(true);
        Alternatives group = parse_alternatives(true);
        if (peek() != ')') fail(fmt::format("expected ')', found {}", describe_here()));
        ++pos_;
        --depth_;
        sequence.push_back({ElementKind::RuleRef, new_rule(current_rule_, std::move(group))});
        last_item = item_start;
      } else if (c == '.') {
        ++pos_;
        sequence.push_back(class_element({{0, 0x10FFFF}}));
        last_item = item_start;
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (last_item == SIZE_MAX) fail(fmt::format("'{}' has nothing before it to repeat", c));
        apply_repetition(sequence, last_item);
        last_item = SIZE_MAX;
      } else {
        break;
      }
      count_elements(1);
      skip_space(nested);
    }
    return sequence;
  }

  uint32_t parse_hex(int digits) {
    uint32_t value = 0;
    for (int i = 0; i < digits; ++i) {
      const char c = peek();
      int d = -1;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      if (d < 0) fail(fmt::format("expected {} hex digits, found {}", digits, describe_here()));
      value = value * 16 + uint32_t(d);
      ++pos_;
    }
    return value;
  }

  // One character of a string or class, as a code point; raw bytes are decoded as UTF-8.
  uint32_t parse_char() {
    if (at_end()) fail("unexpected end of the text");
    const unsigned char c = static_cast<unsigned char>(text_[pos_]);
    if (c == '\\') {
      ++pos_;
      const char e = peek();
      ++pos_;
      switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case '\\': case '"': case '[': case ']': case '-': case '^': case '/': return uint32_t(e);
        case 'x': return parse_hex(2);
        case 'u': return parse_hex(4);
        case 'U': {
          const uint32_t cp = parse_hex(8);
          if (cp > 0x10FFFF) fail(fmt::format("code point U+{:X} is beyond U+10FFFF", cp));
          return cp;
        }
        default: --pos_; fail(fmt::format("unknown escape '\\{}'", e == '\0' ? ' ' : e));
      }
    }
    if (c < 0x80) {
      ++pos_;
      return c;
    }
    const int length = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    if (length == 0 || pos_ + size_t(length) > text_.size()) fail("invalid UTF-8");
    uint32_t cp = c & (0x7F >> length);
    for (int i = 1; i < length; ++i) {
      const unsigned char cc = static_cast<unsigned char>(text_[pos_ + size_t(i)]);
      if ((cc & 0xC0) != 0x80) fail("invalid UTF-8");
      cp = cp << 6 | (cc & 0x3F);
    }
    pos_ += size_t(length);
    return cp;
  }

  void parse_string_literal(Sequence& sequence) {
    std::vector<uint8_t> bytes;
    while (peek() != '"') {
      if (at_end() || peek() == '\n') fail("unterminated string literal");
      append_utf8(bytes, parse_char());
    }
    ++pos_;
    count_elements(bytes.size());
    for (uint8_t b : bytes) sequence.push_back(single_byte(b));
  }

  Element parse_class() {
    // A class met before (a schema's key trie repeats a few hundred times) is looked up by its
    // text: the parse of a class's text up to its ']' is always the same.
    const size_t start = pos_;
    size_t end = start;
    while (end < text_.size() && text_[end] != ']' && text_[end] != '\n') end += text_[end] == '\\' ? 2 : 1;
    if (end < text_.size() && text_[end] == ']') {
      const auto known = class_texts_.find(text_.substr(start, end - start));
      if (known != class_texts_.end()) {
        pos_ = end + 1;
        return known->second;
      }
    }
    bool negated = false;
    if (peek() == '^') {
      negated = true;
      ++pos_;
    }
    std::vector<CodepointRange> ranges;
    while (peek() != ']') {
      if (at_end() || peek() == '\n') fail("unterminated character class");
      const uint32_t lo = parse_char();
      uint32_t hi = lo;
      if (peek() == '-' && pos_ + 1 < text_.size() && text_[pos_ + 1] != ']' && text_[pos_ + 1] != '\n') {
        ++pos_;
        hi = parse_char();
        if (hi < lo) fail(fmt::format("character range U+{:X}-U+{:X} is reversed", lo, hi));
      }
      ranges.push_back({lo, hi});
    }
    ++pos_;
    ranges = normalize_ranges(std::move(ranges));
    if (negated) ranges = complement_ranges(ranges);
    const Element element = class_element(ranges);
    class_texts_.emplace(text_.substr(start, pos_ - 1 - start), element);
    return element;
  }

  // A class of ASCII only is one byte set; otherwise a rule of UTF-8 byte sequences.
  Element class_element(const std::vector<CodepointRange>& normalized) {
    const auto cached = class_rules_.find(normalized);
    if (cached != class_rules_.end()) return cached->second;
    const std::vector<Utf8Sequence> sequences = utf8_sequences(normalized);
    Alternatives alternatives;
    ByteSet single{};
    bool has_single = false;
    for (const Utf8Sequence& s : sequences) {
      if (s.length == 1) {
        byte_set_add_range(single, s.bytes[0].first, s.bytes[0].second);
        has_single = true;
        continue;
      }
      Sequence alt;
      for (int i = 0; i < s.length; ++i) {
        ByteSet set{};
        byte_set_add_range(set, s.bytes[size_t(i)].first, s.bytes[size_t(i)].second);
        alt.push_back({ElementKind::Bytes, byte_set_index(set)});
      }
      alternatives.push_back(std::move(alt));
    }
    Element element;
    if (alternatives.empty() && has_single) {
      element = {ElementKind::Bytes, byte_set_index(single)};
    } else {
      if (has_single) alternatives.insert(alternatives.begin(), Sequence{{ElementKind::Bytes, byte_set_index(single)}});
      count_elements(sequences.size() * 4);
      element = {ElementKind::RuleRef, new_rule("char", std::move(alternatives))};
    }
    class_rules_.emplace(normalized, element);
    return element;
  }

  int32_t parse_count() {
    const size_t start = pos_;
    int64_t value = 0;
    while (peek() >= '0' && peek() <= '9') {
      value = value * 10 + (peek() - '0');
      if (value > limits_.max_repetition) fail(fmt::format("repetition count beyond the limit of {}", limits_.max_repetition));
      ++pos_;
    }
    if (pos_ == start) fail(fmt::format("expected a number, found {}", describe_here()));
    return int32_t(value);
  }

  // x* x+ x? x{m} x{m,} x{m,n}: x repeated min times, then x* or a chain of nested options.
  void apply_repetition(Sequence& sequence, size_t item_start) {
    int32_t min = 0, max = -1;
    const char op = text_[pos_++];
    if (op == '+') min = 1;
    else if (op == '?') max = 1;
    else if (op == '{') {
      skip_space(true);
      min = parse_count();
      skip_space(true);
      max = min;
      if (peek() == ',') {
        ++pos_;
        skip_space(true);
        max = peek() == '}' ? -1 : parse_count();
        skip_space(true);
      }
      if (peek() != '}') fail(fmt::format("expected '}}', found {}", describe_here()));
      ++pos_;
      if (max >= 0 && max < min) fail(fmt::format("repetition {{{},{}}} has its maximum below its minimum", min, max));
    }
    Sequence item(sequence.begin() + std::ptrdiff_t(item_start), sequence.end());
    sequence.resize(item_start);
    Element x = item.size() == 1 ? item[0] : Element{ElementKind::RuleRef, new_rule(current_rule_, {item})};
    count_elements(size_t(min) * 3 + size_t(max > min ? max - min : 1) * 5);
    if (op == '{' && (min >= 2 || max >= 2 || (max < 0 && min >= 1))) {
      apply_counted_repetition(sequence, x, min, max);
      return;
    }
    for (int32_t i = 0; i < min; ++i) sequence.push_back(x);
    if (max < 0) {
      const int32_t star = rule_index(fmt::format("{}_star_{}", current_rule_, ++synthetic_count_), pos_);
      rules_[size_t(star)] = {{x, {ElementKind::RuleRef, star}}, {}};
      defined_[size_t(star)] = true;
      sequence.push_back({ElementKind::RuleRef, star});
    } else if (max > min) {
      int32_t option = new_rule(current_rule_, {{x}, {}});
      for (int32_t i = 1; i < max - min; ++i)
        option = new_rule(current_rule_, {{x, {ElementKind::RuleRef, option}}, {}});
      sequence.push_back({ElementKind::RuleRef, option});
    }
  }

  // x{m,n} as a chain of rules, one per item (see CountedFrame): the optional items last
  // (option_k ::= x option_k-1 | ""), or x* for n unbounded, and before them the required ones
  // (need_k ::= x need_k-1). x becomes a rule of its own, one per distinct byte set.
  void apply_counted_repetition(Sequence& sequence, Element x, int32_t min, int32_t max) {
    if (x.kind == ElementKind::Bytes) {
      auto [found, added] = item_rules_.emplace(x.value, 0);
      if (added) found->second = new_rule(current_rule_, {{x}});
      x = {ElementKind::RuleRef, found->second};
    }
    const auto link = [&](int32_t rule, int32_t more_required, int32_t more_allowed) {
      counted_links_.push_back({rule, 0, 1, {x.value, more_required, more_allowed, false}});
    };
    int32_t head = -1;
    if (max < 0) {
      head = rule_index(fmt::format("{}_star_{}", current_rule_, ++synthetic_count_), pos_);
      rules_[size_t(head)] = {{x, {ElementKind::RuleRef, head}}, {}};
      defined_[size_t(head)] = true;
      link(head, 0, -1);
    } else if (max > min) {
      head = new_rule(current_rule_, {{x}, {}});
      for (int32_t i = 1; i < max - min; ++i) {
        head = new_rule(current_rule_, {{x, {ElementKind::RuleRef, head}}, {}});
        link(head, 0, i);
      }
    }
    for (int32_t i = 1; i <= min; ++i) {
      if (head < 0) {
        head = new_rule(current_rule_, {{x}});
        continue;
      }
      const int32_t next = head;
      head = new_rule(current_rule_, {{x, {ElementKind::RuleRef, next}}});
      link(head, i - 1, max < 0 ? -1 : i - 1 + max - min);
    }
    if (head >= 0) sequence.push_back({ElementKind::RuleRef, head});
  }

  CompiledGrammar finish(int32_t root) {
    CompiledGrammar g;
    g.root = root;
    g.rule_names = names_;
    g.byte_sets = byte_sets_;
    g.rule_alternatives.resize(rules_.size());
    for (size_t r = 0; r < rules_.size(); ++r) {
      for (const Sequence& alt : rules_[r]) {
        g.rule_alternatives[r].push_back(int32_t(g.elements.size()));
        g.elements.insert(g.elements.end(), alt.begin(), alt.end());
        g.elements.push_back({ElementKind::End, 0});
      }
    }
    count_elements(add_counted_repetitions(g, counted_links_));
    check_left_recursion(g);
    return g;
  }

  std::string_view text_;
  const GrammarLimits& limits_;
  size_t pos_ = 0;
  int32_t depth_ = 0;
  size_t element_count_ = 0;
  int32_t synthetic_count_ = 0;
  std::string current_rule_;
  std::vector<Alternatives> rules_;
  std::vector<std::string> names_;
  std::vector<bool> defined_;
  std::vector<size_t> first_use_;
  // Rule names, looked up by the text's views of them.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
  };
  std::unordered_map<std::string, int32_t, NameHash, std::equal_to<>> index_;
  std::vector<ByteSet> byte_sets_;
  std::map<ByteSet, int32_t> byte_set_index_;
  std::map<std::vector<CodepointRange>, Element> class_rules_;
  std::unordered_map<std::string_view, Element> class_texts_;  // views of text_
  std::map<int32_t, int32_t> item_rules_;  // byte set -> the item rule of a counted repetition
  std::vector<CountedLink> counted_links_;
};

}  // namespace

// A rule that can reach itself without consuming a byte would make the matcher expand
// forever: refuse it. Rules that can match nothing (nullable) are seen through.
void check_left_recursion(const CompiledGrammar& g) {
  const size_t n = g.rule_alternatives.size();
  const std::vector<bool> nullable = nullable_rules(g);
  std::vector<std::vector<int32_t>> left_edges(n);
  for (size_t r = 0; r < n; ++r)
    for (int32_t start : g.rule_alternatives[r])
      for (size_t i = size_t(start); g.elements[i].kind == ElementKind::RuleRef; ++i) {
        left_edges[r].push_back(g.elements[i].value);
        if (!nullable[size_t(g.elements[i].value)]) break;
      }
  // Iterative depth-first search for a cycle: 0 unvisited, 1 on the path, 2 done.
  std::vector<uint8_t> color(n, 0);
  for (size_t start = 0; start < n; ++start) {
    if (color[start]) continue;
    std::vector<std::pair<size_t, size_t>> path{{start, 0}};
    color[start] = 1;
    while (!path.empty()) {
      auto& [rule, next] = path.back();
      if (next == left_edges[rule].size()) {
        color[rule] = 2;
        path.pop_back();
        continue;
      }
      const size_t target = size_t(left_edges[rule][next++]);
      if (color[target] == 1)
        throw Error(fmt::format("grammar: rule '{}' is left-recursive (it can reach itself without matching a byte; "
                                "a repetition of something that can match nothing counts too)",
                                g.rule_names[target]));
      if (color[target] == 0) {
        color[target] = 1;
        path.push_back({target, 0});
      }
    }
  }
}

CompiledGrammar parse_gbnf(std::string_view text, const GrammarLimits& limits) { return GbnfParser(text, limits).parse(); }

}  // namespace grammar

Grammar compile_gbnf(std::string_view text, const GrammarLimits& limits) {
  Grammar g;
  g.compiled = std::make_shared<const grammar::CompiledGrammar>(grammar::parse_gbnf(text, limits));
  g.gbnf = std::string(text);
  return g;
}

}  // namespace slm
