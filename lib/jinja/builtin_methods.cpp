// The Python methods templates call on values: "text".startswith(...), dict.items(), ...
// Mutating methods exist but raise SecurityError when called, like jinja's
// ImmutableSandboxedEnvironment.
#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "lib/jinja/builtins.hpp"
#include "lib/jinja/evaluator.hpp"
#include "lib/jinja/python_ops.hpp"
#include "lib/jinja/text.hpp"

namespace slm::jinja::detail {
namespace {

using Method = Value (*)(Evaluator&, const Value& self, const CallArgs& args);

const std::string& string_argument(const Value& value, std::string_view method) {
  if (!value.is_string())
    raise_type_error(fmt::format("{}() argument must be str, not {}", method, value.type_name()));
  return value.as_string();
}

std::int64_t optional_count(const Arguments& a, std::size_t index) {
  if (!a.given(index) || a[index].is_none()) return -1;
  if (!a[index].is_integer()) raise_type_error("an integer is required");
  return a[index].as_int();
}

// ---- str

// str.split / str.rsplit. Without a separator: runs of whitespace, no empty parts.
Value split_text(const std::string& text, const Value& separator, std::int64_t max_split, bool from_right) {
  std::vector<std::string> parts;
  if (separator.is_none() || separator.is_undefined()) {
    std::u32string rest = decode_utf8(text);
    if (from_right) std::reverse(rest.begin(), rest.end());
    std::size_t i = 0;
    while (true) {
      while (i < rest.size() && is_python_space(rest[i])) ++i;
      if (i >= rest.size()) break;
      if (max_split >= 0 && static_cast<std::int64_t>(parts.size()) == max_split) {
        std::size_t end = rest.size();
        while (end > i && is_python_space(rest[end - 1])) --end;
        parts.push_back(encode_utf8(std::u32string(rest.begin() + static_cast<std::ptrdiff_t>(i), rest.begin() + static_cast<std::ptrdiff_t>(end))));
        break;
      }
      const std::size_t start = i;
      while (i < rest.size() && !is_python_space(rest[i])) ++i;
      parts.push_back(encode_utf8(std::u32string(rest.begin() + static_cast<std::ptrdiff_t>(start), rest.begin() + static_cast<std::ptrdiff_t>(i))));
    }
    if (from_right) {
      for (std::string& part : parts) {
        std::u32string code_points = decode_utf8(part);
        std::reverse(code_points.begin(), code_points.end());
        part = encode_utf8(code_points);
      }
      std::reverse(parts.begin(), parts.end());
    }
  } else {
    const std::string& sep = string_argument(separator, "split");
    if (sep.empty()) raise("ValueError", "empty separator");
    if (!from_right) {
      std::size_t start = 0;
      while (max_split < 0 || static_cast<std::int64_t>(parts.size()) < max_split) {
        const std::size_t found = text.find(sep, start);
        if (found == std::string::npos) break;
        parts.push_back(text.substr(start, found - start));
        start = found + sep.size();
      }
      parts.push_back(text.substr(start));
    } else {
      std::size_t end = text.size();
      while (max_split < 0 || static_cast<std::int64_t>(parts.size()) < max_split) {
        if (end < sep.size()) break;
        const std::size_t found = text.rfind(sep, end - sep.size());
        if (found == std::string::npos) break;
        parts.push_back(text.substr(found + sep.size(), end - found - sep.size()));
        end = found;
      }
      parts.push_back(text.substr(0, end));
      std::reverse(parts.begin(), parts.end());
    }
  }
  std::vector<Value> values(parts.begin(), parts.end());
  return Value::list(std::move(values));
}

Value str_split(Evaluator&, const Value& self, const CallArgs& args) {
  const Arguments a(args, "split", {"sep", "maxsplit"});
  return split_text(self.as_string(), a[0], optional_count(a, 1), false);
}

Value str_rsplit(Evaluator&, const Value& self, const CallArgs& args) {
  const Arguments a(args, "rsplit", {"sep", "maxsplit"});
  return split_text(self.as_string(), a[0], optional_count(a, 1), true);
}

Value str_splitlines(Evaluator&, const Value& self, const CallArgs& args) {
  const Arguments a(args, "splitlines", {"keepends"});
  std::vector<Value> lines;
  const std::u32string text = decode_utf8(self.as_string());
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    const bool boundary = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 ||
                          c == 0x2028 || c == 0x2029;
    if (!boundary) continue;
    std::size_t end = i + 1;
    if (c == '\r' && end < text.size() && text[end] == '\n') ++end;
    lines.emplace_back(encode_utf8(std::u32string_view(text).substr(start, (a[0].truthy() ? end : i) - start)));
    start = end;
    i = end - 1;
  }
  if (start < text.size()) lines.emplace_back(encode_utf8(std::u32string_view(text).substr(start)));
  return Value::list(std::move(lines));
}

template <StripSide side>
Value str_strip(Evaluator&, const Value& self, const CallArgs& args) {
  const Arguments a(args, "strip", {"chars"});
  if (!a.given(0) || a[0].is_none()) return python_strip(self.as_string(), side);
  return python_strip_chars(self.as_string(), string_argument(a[0], "strip"), side);
}

// startswith / endswith take a string or a tuple of strings.
template <bool at_start>
Value str_affix(Evaluator&, const Value& self, const CallArgs& args) {
  const Arguments a(args, at_start ? "startswith" : "endswith", {"affix"});
  const std::string& text = self.as_string();
  auto matches = [&](const Value& affix) {
    const std::string& s = string_argument(affix, at_start ? "startswith" : "endswith");
    return at_start ? text.starts_with(s) : text.ends_with(s);
  };
  if (a[0].is_tuple()) return std::any_of(a[0].items().begin(), a[0].items().end(), matches);
  return matches(a[0]);
}

template <bool remove_prefix>
Value str_remove_affix(Evaluator&, const Value& self, const CallArgs& args) {
  const Arguments a(args, remove_prefix ? "removeprefix" : "removesuffix", {"affix"});
  const std::string& text = self.as_string();
  const std::string& affix = string_argument(a[0], "removeprefix");
  if (remove_prefix && text.starts_with(affix)) return text.substr(affix.size());
  if (!remove_prefix && text.ends_with(affix)) return text.substr(0, text.size() - affix.size());
  return text;
}

Value str_replace(Evaluator& evaluator, const Value& self, const CallArgs& args) {
  const Arguments a(args, "replace", {"old", "new", "count"});
  CallArgs filter_args{{a[0], a[1]}, {}};
  if (a.given(2)) filter_args.positional.push_back(a[2]);
  return evaluator.apply_filter("replace", self, filter_args);
}

Value str_upper(Evaluator&, const Value& self, const CallArgs&) { return upper(self.as_string()); }
Value str_lower(Evaluator&, const Value& self, const CallArgs&) { return lower(self.as_string()); }
Value str_capitalize(Evaluator&, const Value& self, const CallArgs&) { return capitalize(self.as_string()); }

Value str_swapcase(Evaluator&, const Value& self, const CallArgs&) {
  std::string out;
  for (char32_t c : decode_utf8(self.as_string())) append_utf8(out, is_cased_upper(c) ? to_lower(c) : to_upper(c));
  return out;
}

// str.title(): a letter is uppercased when the character before it is not a letter.
Value str_title(Evaluator&, const Value& self, const CallArgs&) {
  std::string out;
  bool previous_cased = false;
  for (char32_t c : decode_utf8(self.as_string())) {
    const bool cased = is_cased_upper(c) || is_cased_lower(c);
    append_utf8(out, cased ? (previous_cased ? to_lower(c) : to_upper(c)) : c);
    previous_cased = cased;
  }
  return out;
}

// Position of `sub` in code points, or -1.
std::int64_t find_text(const std::string& text, const std::string& sub, bool from_right) {
  const std::size_t found = from_right ? text.rfind(sub) : text.find(sub);
  if (found == std::string::npos) return -1;
  return static_cast<std::int64_t>(count_code_points(std::string_view(text).substr(0, found)));
}

template <bool from_right, bool raise_when_missing>
Value str_find(Evaluator&, const Value& self, const CallArgs& args) {
  const Arguments a(args, "find", {"sub"});
  const std::int64_t position = find_text(self.as_string(), string_argument(a[0], "find"), from_right);
  if (raise_when_missing && position < 0) raise("ValueError", "substring not found");
  return position;
}

Value str_count(Evaluator&, const Value& self, const CallArgs& args) {
  const Arguments a(args, "count", {"sub"});
  const std::string& text = self.as_string();
  const std::string& sub = string_argument(a[0], "count");
  if (sub.empty()) return static_cast<std::int64_t>(count_code_points(text) + 1);
  std::int64_t count = 0;
  for (std::size_t at = text.find(sub); at != std::string::npos; at = text.find(sub, at + sub.size())) ++count;
  return count;
}

Value str_join(Evaluator& evaluator, const Value& self, const CallArgs& args) {
  const Arguments a(args, "join", {"iterable"});
  std::string out;
  std::size_t index = 0;
  for (const Value& item : iterate(a[0])) {
    if (!item.is_string())
      raise_type_error(fmt::format("sequence item {}: expected str instance, {} found", index, item.type_name()));
    if (index++ > 0) out += self.as_string();
    out += item.as_string();
    if (out.size() > evaluator.limits().max_output_bytes) raise("ResourceError", "joined string exceeds the size limit");
  }
  return out;
}

// center / ljust / rjust / zfill: pad to a width in code points.
enum class Pad { center, left_justify, right_justify, zero_fill };
template <Pad kind>
Value str_pad(Evaluator& evaluator, const Value& self, const CallArgs& args) {
  const Arguments a(args, "pad", {"width", "fillchar"});
  if (!a[0].is_integer()) raise_type_error("an integer width is required");
  const std::string fill = a.given(1) ? string_argument(a[1], "pad") : (kind == Pad::zero_fill ? "0" : " ");
  if (count_code_points(fill) != 1) raise_type_error("The fill character must be exactly one character long");
  const std::string& text = self.as_string();
  const auto length = static_cast<std::int64_t>(count_code_points(text));
  const std::int64_t width = a[0].as_int();
  if (width <= length) return text;
  if (static_cast<std::uint64_t>(width) * fill.size() > evaluator.limits().max_output_bytes)
    raise("ResourceError", "padding exceeds the size limit");
  const std::int64_t margin = width - length;
  std::int64_t left = kind == Pad::center ? margin / 2 + (margin & width & 1) : kind == Pad::left_justify ? 0 : margin;
  auto repeat = [&](std::int64_t n) {
    std::string out;
    for (std::int64_t i = 0; i < n; ++i) out += fill;
    return out;
  };
  if (kind == Pad::zero_fill && !text.empty() && (text[0] == '-' || text[0] == '+'))
    return text.substr(0, 1) + repeat(margin) + text.substr(1);
  return repeat(left) + text + repeat(margin - left);
}

template <bool from_right>
Value str_partition(Evaluator&, const Value& self, const CallArgs& args) {
  const Arguments a(args, "partition", {"sep"});
  const std::string& text = self.as_string();
  const std::string& sep = string_argument(a[0], "partition");
  if (sep.empty()) raise("ValueError", "empty separator");
  const std::size_t found = from_right ? text.rfind(sep) : text.find(sep);
  if (found == std::string::npos)
    return from_right ? Value::tuple({"", "", text}) : Value::tuple({text, "", ""});
  return Value::tuple({text.substr(0, found), sep, text.substr(found + sep.size())});
}

template <bool (*predicate)(char32_t)>
Value str_is(Evaluator&, const Value& self, const CallArgs&) {
  const std::u32string text = decode_utf8(self.as_string());
  return !text.empty() && std::all_of(text.begin(), text.end(), predicate);
}
bool is_space_char(char32_t c) { return is_python_space(c); }
bool is_digit_char(char32_t c) { return c >= '0' && c <= '9'; }
bool is_alpha_char(char32_t c) { return is_word_char(c) && c != '_' && !(c >= '0' && c <= '9'); }
bool is_alnum_char(char32_t c) { return is_word_char(c) && c != '_'; }

Value str_islower(Evaluator& e, const Value& self, const CallArgs& args) { return e.apply_test("lower", self, args); }
Value str_isupper(Evaluator& e, const Value& self, const CallArgs& args) { return e.apply_test("upper", self, args); }
Value str_isascii(Evaluator&, const Value& self, const CallArgs&) { return is_ascii(self.as_string()); }

Value str_format(Evaluator& evaluator, const Value& self, const CallArgs& args) {
  Value result(python_str_format(self.as_string(), args));
  evaluator.account(result);
  return result;
}

// ---- list and tuple

Value sequence_count(Evaluator&, const Value& self, const CallArgs& args) {
  const Arguments a(args, "count", {"value"});
  return static_cast<std::int64_t>(std::count_if(self.items().begin(), self.items().end(), [&](const Value& v) { return python_equals(v, a[0]); }));
}

Value sequence_index(Evaluator&, const Value& self, const CallArgs& args) {
  const Arguments a(args, "index", {"value"});
  const auto found = std::find_if(self.items().begin(), self.items().end(), [&](const Value& v) { return python_equals(v, a[0]); });
  if (found == self.items().end()) raise("ValueError", fmt::format("{} is not in {}", a[0].repr(), self.type_name()));
  return static_cast<std::int64_t>(found - self.items().begin());
}

Value list_copy(Evaluator&, const Value& self, const CallArgs&) { return Value::list(self.items()); }

// ---- dict

Value dict_items(Evaluator&, const Value& self, const CallArgs&) {
  std::vector<Value> pairs;
  for (const auto& [key, value] : self.as_dict().entries) pairs.push_back(Value::tuple({key, value}));
  return Value::list(std::move(pairs));
}

Value dict_keys(Evaluator&, const Value& self, const CallArgs&) { return Value::list(iterate(self)); }

Value dict_values(Evaluator&, const Value& self, const CallArgs&) {
  std::vector<Value> values;
  for (const auto& entry : self.as_dict().entries) values.push_back(entry.second);
  return Value::list(std::move(values));
}

Value dict_get(Evaluator&, const Value& self, const CallArgs& args) {
  const Arguments a(args, "get", {"key", "default"});
  const Value* found = self.as_dict().find(a[0]);
  return found ? *found : a.get(1, Value::none());
}

Value dict_copy(Evaluator&, const Value& self, const CallArgs&) { return Value::dict(self.as_dict().entries); }

using MethodTable = std::unordered_map<std::string_view, Method>;

const MethodTable& string_methods() {
  static const MethodTable table = {
      {"split", str_split}, {"rsplit", str_rsplit}, {"splitlines", str_splitlines},
      {"strip", str_strip<StripSide::both>}, {"lstrip", str_strip<StripSide::left>}, {"rstrip", str_strip<StripSide::right>},
      {"startswith", str_affix<true>}, {"endswith", str_affix<false>},
      {"removeprefix", str_remove_affix<true>}, {"removesuffix", str_remove_affix<false>},
      {"replace", str_replace}, {"upper", str_upper}, {"lower", str_lower}, {"casefold", str_lower},
      {"capitalize", str_capitalize}, {"swapcase", str_swapcase}, {"title", str_title},
      {"find", str_find<false, false>}, {"rfind", str_find<true, false>}, {"index", str_find<false, true>},
      {"rindex", str_find<true, true>}, {"count", str_count}, {"join", str_join},
      {"center", str_pad<Pad::center>}, {"ljust", str_pad<Pad::left_justify>}, {"rjust", str_pad<Pad::right_justify>},
      {"zfill", str_pad<Pad::zero_fill>}, {"partition", str_partition<false>}, {"rpartition", str_partition<true>},
      {"isspace", str_is<is_space_char>}, {"isdigit", str_is<is_digit_char>}, {"isdecimal", str_is<is_digit_char>},
      {"isnumeric", str_is<is_digit_char>}, {"isalpha", str_is<is_alpha_char>}, {"isalnum", str_is<is_alnum_char>},
      {"isascii", str_isascii}, {"islower", str_islower}, {"isupper", str_isupper}, {"format", str_format},
  };
  return table;
}

const MethodTable& sequence_methods() {
  static const MethodTable table = {{"count", sequence_count}, {"index", sequence_index}, {"copy", list_copy}};
  return table;
}

const MethodTable& dict_methods() {
  static const MethodTable table = {{"items", dict_items}, {"keys", dict_keys}, {"values", dict_values},
                                    {"get", dict_get}, {"copy", dict_copy}};
  return table;
}

bool contains(std::initializer_list<std::string_view> names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

std::optional<Value> find_method(const Value& self, std::string_view name) {
  const MethodTable* table = nullptr;
  bool is_mutating = false;
  bool is_known = false;
  if (self.is_string()) {
    table = &string_methods();
    is_known = contains({"encode", "expandtabs", "format_map", "isidentifier", "isprintable", "istitle", "maketrans",
                         "translate"}, name);
  } else if (self.is_sequence()) {
    table = &sequence_methods();
    if (self.is_tuple() && name == "copy") return std::nullopt;
    is_mutating = self.is_list() && contains({"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"}, name);
  } else if (self.is_dict()) {
    table = &dict_methods();
    is_mutating = contains({"pop", "popitem", "setdefault", "update", "clear"}, name);
    is_known = name == "fromkeys";
  } else {
    return std::nullopt;
  }
  const std::string type = self.type_name();
  if (is_mutating) {
    return make_function(std::string(name), [type, method = std::string(name)](Evaluator&, CallArgs&) -> Value {
      raise("SecurityError", fmt::format("access to attribute '{}' of '{}' object is unsafe.", method, type));
    });
  }
  const auto found = table->find(name);
  if (found == table->end()) {
    if (!is_known) return std::nullopt;
    return make_function(std::string(name), [type, method = std::string(name)](Evaluator&, CallArgs&) -> Value {
      raise("TemplateRuntimeError", fmt::format("unsupported construct: {}.{}() is not implemented", type, method));
    });
  }
  const Method method = found->second;
  return make_function(std::string(name), [self, method](Evaluator& evaluator, CallArgs& args) {
    Value result = method(evaluator, self, args);
    evaluator.account(result);
    return result;
  });
}

}  // namespace slm::jinja::detail
