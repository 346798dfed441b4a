#include "lib/jinja/json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "lib/jinja/runtime.hpp"
#include "lib/jinja/text.hpp"

namespace slm::jinja {
namespace {

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : text_(text) {}

  Value read_document() {
    Value value = read_value(0);
    skip_space();
    if (pos_ != text_.size()) fail("extra data after the JSON value");
    return value;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;

  [[noreturn]] void fail(std::string_view message) const {
    throw slm::Error(fmt::format("json: offset {}: {}", pos_, message));
  }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) ++pos_;
  }

  bool consume(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Value read_value(std::uint32_t depth) {
    if (depth >= max_value_depth) fail(fmt::format("nested deeper than {} levels", max_value_depth));
    skip_space();
    if (pos_ >= text_.size()) fail("unexpected end of input, expected a value");
    const char c = text_[pos_];
    if (c == '{') return read_object(depth);
    if (c == '[') return read_array(depth);
    if (c == '"') return Value(read_string());
    if (consume("true")) return true;
    if (consume("false")) return false;
    if (consume("null")) return Value::none();
    if (consume("NaN")) return std::nan("");  // Python's json accepts these
    if (consume("Infinity")) return HUGE_VAL;
    if (consume("-Infinity")) return -HUGE_VAL;
    if (c == '-' || (c >= '0' && c <= '9')) return read_number();
    fail(fmt::format("unexpected character '{}'", c));
  }

  Value read_object(std::uint32_t depth) {
    ++pos_;
    Value object = Value::dict();
    skip_space();
    if (consume("}")) return object;
    while (true) {
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != '"') fail("expected a string key");
      std::string key = read_string();
      skip_space();
      if (!consume(":")) fail("expected ':' after an object key");
      object.set(Value(std::move(key)), read_value(depth + 1));
      skip_space();
      if (consume("}")) return object;
      if (!consume(",")) fail("expected ',' or '}' in an object");
    }
  }

  Value read_array(std::uint32_t depth) {
    ++pos_;
    std::vector<Value> items;
    skip_space();
    if (consume("]")) return Value::list(std::move(items));
    while (true) {
      items.push_back(read_value(depth + 1));
      skip_space();
      if (consume("]")) return Value::list(std::move(items));
      if (!consume(",")) fail("expected ',' or ']' in an array");
    }
  }

  Value read_number() {
    const std::size_t start = pos_;
    if (text_[pos_] == '-') ++pos_;
    auto digits = [&] {
      const std::size_t begin = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
      return pos_ - begin;
    };
    if (digits() == 0) fail("invalid number");
    bool is_float = false;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) fail("invalid number");
      is_float = true;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (digits() == 0) fail("invalid number");
      is_float = true;
    }
    const std::string number(text_.substr(start, pos_ - start));
    if (!is_float) {
      errno = 0;
      const long long value = std::strtoll(number.c_str(), nullptr, 10);
      if (errno != ERANGE) return static_cast<std::int64_t>(value);
    }
    return std::strtod(number.c_str(), nullptr);
  }

  unsigned read_hex4() {
    if (pos_ + 4 > text_.size()) fail("truncated \\u escape");
    unsigned value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      value <<= 4;
      if (c >= '0' && c <= '9') value |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') value |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') value |= static_cast<unsigned>(c - 'A' + 10);
      else fail("invalid \\u escape");
    }
    return value;
  }

  std::string read_string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) fail("unterminated string");
      const char c = text_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("invalid control character in a string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) fail("unterminated string");
      const char escape = text_[pos_++];
      switch (escape) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          char32_t code_point = read_hex4();
          if (code_point >= 0xD800 && code_point <= 0xDBFF && text_.substr(pos_, 2) == "\\u") {
            const std::size_t saved = pos_;
            pos_ += 2;
            const unsigned low = read_hex4();
            if (low >= 0xDC00 && low <= 0xDFFF) code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
            else pos_ = saved;
          }
          if (code_point >= 0xD800 && code_point <= 0xDFFF) code_point = 0xFFFD;  // a lone surrogate
          detail::append_utf8(out, code_point);
          break;
        }
        default: fail(fmt::format("invalid escape '\\{}'", escape));
      }
    }
  }
};

}  // namespace

Value value_from_json(std::string_view json_text) { return JsonReader(json_text).read_document(); }

std::string to_json(const Value& value) { return detail::dump_json(value, {}); }

namespace detail {
namespace {

// The escapes json.dumps always applies; false for a character it copies as is.
bool append_basic_escape(std::string& out, char32_t c) {
  switch (c) {
    case '"': out += "\\\""; return true;
    case '\\': out += "\\\\"; return true;
    case '\n': out += "\\n"; return true;
    case '\r': out += "\\r"; return true;
    case '\t': out += "\\t"; return true;
    case '\b': out += "\\b"; return true;
    case '\f': out += "\\f"; return true;
    default:
      if (c >= 0x20) return false;
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
      return true;
  }
}

void append_json_string(std::string& out, std::string_view text, bool ensure_ascii) {
  out.push_back('"');
  if (!ensure_ascii) {
    for (char c : text)
      if (!append_basic_escape(out, static_cast<unsigned char>(c))) out.push_back(c);
  } else {
    for (char32_t c : decode_utf8(text)) {
      if (append_basic_escape(out, c)) continue;
      if (c < 0x7F) {
        out.push_back(static_cast<char>(c));
      } else if (c >= 0x10000) {  // a UTF-16 surrogate pair
        out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + ((c - 0x10000) >> 10), 0xDC00 + ((c - 0x10000) & 0x3FF));
      } else {
        out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
      }
    }
  }
  out.push_back('"');
}

std::string json_float(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value < 0 ? "-Infinity" : "Infinity";
  return python_float_repr(value);
}

// Python's json converts non-string keys to strings.
std::string json_key(const Value& key) {
  switch (key.kind()) {
    case Value::Kind::string: return key.as_string();
    case Value::Kind::boolean: return key.as_bool() ? "true" : "false";
    case Value::Kind::none: return "null";
    case Value::Kind::integer: return std::to_string(key.as_int());
    case Value::Kind::floating: return json_float(key.as_double());
    default: raise_type_error(fmt::format("keys must be str, int, float, bool or None, not {}", key.type_name()));
  }
}

class JsonWriter {
 public:
  explicit JsonWriter(const JsonFormat& format)
      : format_(format),
        item_separator_(format.item_separator.value_or(format.indent ? "," : ", ")) {}

  void write(const Value& value, std::size_t level) {
    charge_traversal(traversal_cost_per_value + value.as_string().size());
    switch (value.kind()) {
      case Value::Kind::none: out += "null"; return;
      case Value::Kind::boolean: out += value.as_bool() ? "true" : "false"; return;
      case Value::Kind::integer: out += std::to_string(value.as_int()); return;
      case Value::Kind::floating: out += json_float(value.as_double()); return;
      case Value::Kind::string: append_json_string(out, value.as_string(), format_.ensure_ascii); return;
      case Value::Kind::list:
      case Value::Kind::tuple: {
        const auto& items = value.items();
        if (items.empty()) {
          out += "[]";
          return;
        }
        out.push_back('[');
        for (std::size_t i = 0; i < items.size(); ++i) {
          if (i > 0) out += item_separator_;
          newline(level + 1);
          write(items[i], level + 1);
        }
        newline(level);
        out.push_back(']');
        return;
      }
      case Value::Kind::dict: {
        std::vector<std::pair<std::string, const Value*>> entries;
        for (const auto& [key, item] : value.as_dict().entries) entries.emplace_back(json_key(key), &item);
        if (format_.sort_keys)
          std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        if (entries.empty()) {
          out += "{}";
          return;
        }
        out.push_back('{');
        for (std::size_t i = 0; i < entries.size(); ++i) {
          if (i > 0) out += item_separator_;
          newline(level + 1);
          append_json_string(out, entries[i].first, format_.ensure_ascii);
          out += format_.key_separator;
          write(*entries[i].second, level + 1);
        }
        newline(level);
        out.push_back('}');
        return;
      }
      default: raise_type_error(fmt::format("Object of type {} is not JSON serializable", value.type_name()));
    }
  }

  std::string out;

 private:
  const JsonFormat& format_;
  std::string item_separator_;

  void newline(std::size_t level) {
    if (!format_.indent) return;
    out.push_back('\n');
    for (std::size_t i = 0; i < level; ++i) out += *format_.indent;
  }
};

}  // namespace

std::string dump_json(const Value& value, const JsonFormat& format) {
  JsonWriter writer(format);
  writer.write(value, 0);
  return std::move(writer.out);
}

}  // namespace detail
}  // namespace slm::jinja
