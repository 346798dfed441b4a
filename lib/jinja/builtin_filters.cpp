// Jinja's builtin filters (jinja2/filters.py), with transformers' tojson.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <unordered_map>

#include "lib/jinja/builtins.hpp"
#include "lib/jinja/evaluator.hpp"
#include "lib/jinja/json.hpp"
#include "lib/jinja/python_ops.hpp"
#include "lib/jinja/text.hpp"

namespace slm::jinja::detail {
namespace {

// Bounds the result of filters that pad or repeat, before anything is allocated.
void check_size(Evaluator& evaluator, std::uint64_t bytes) {
  if (bytes > evaluator.limits().max_output_bytes)
    raise("ResourceError", fmt::format("a result of {} bytes exceeds the limit of {} bytes", bytes, evaluator.limits().max_output_bytes));
}

std::int64_t int_argument(const Value& value, std::string_view what) {
  if (!value.is_integer() && !value.is_boolean()) raise_type_error(fmt::format("{} must be an integer, not {}", what, value.type_name()));
  return value.as_int_like();
}

// jinja's make_attrgetter: "a.b.0" looks up each part with item-then-attribute lookup.
Value lookup_path(const Value& item, const std::string& path) {
  Value current = item;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    current = get_item(current, numeric ? Value(std::strtoll(part.c_str(), nullptr, 10)) : Value(part));
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

// Sort and compare keys: lowercased strings unless case_sensitive.
Value fold_case(const Value& value, bool case_sensitive) {
  return !case_sensitive && value.is_string() ? Value(lower(value.as_string())) : value;
}

// The key of `item` for sort/unique/min/max: its attribute(s) when given, case folded.
Value sort_key(const Value& item, const Value& attribute, bool case_sensitive) {
  if (attribute.is_undefined() || attribute.is_none()) return fold_case(item, case_sensitive);
  if (attribute.is_integer()) return fold_case(get_item(item, attribute), case_sensitive);
  const std::string& paths = attribute.as_string();
  if (paths.find(',') == std::string::npos) return fold_case(lookup_path(item, paths), case_sensitive);
  std::vector<Value> keys;  // "a,b": a tuple of keys
  std::size_t start = 0;
  while (start <= paths.size()) {
    const std::size_t comma = std::min(paths.find(',', start), paths.size());
    keys.push_back(fold_case(lookup_path(item, python_strip(paths.substr(start, comma - start), StripSide::both)), case_sensitive));
    start = comma + 1;
  }
  return Value::tuple(std::move(keys));
}

Value filter_abs(Evaluator&, const Value& input, const CallArgs&) {
  if (input.is_floating()) return std::fabs(input.as_double());
  if (input.is_integer() || input.is_boolean()) return python_unary(input.as_int_like() < 0 ? Operator::negate : Operator::plus, input);
  if (input.is_undefined()) raise_undefined(input);
  raise_type_error(fmt::format("bad operand type for abs(): '{}'", input.type_name()));
}

Value filter_attr(Evaluator&, const Value& input, const CallArgs& args) {
  const Arguments a(args, "attr", {"name"});
  const std::string name = a[0].str();
  if (auto method = find_method(input, name)) return *method;
  if (input.is_object())
    if (const Value* value = input.as_object()->attributes.find(std::string_view(name))) return *value;
  return Value::undefined(fmt::format("'{} object' has no attribute '{}'", input.type_name(), name));
}

Value filter_batch(Evaluator&, const Value& input, const CallArgs& args) {
  const Arguments a(args, "batch", {"linecount", "fill_with"});
  const std::int64_t size = int_argument(a[0], "batch size");
  if (size < 1) raise("ValueError", "batch size must be at least 1");
  std::vector<Value> batches, current;
  for (const Value& item : iterate(input)) {
    current.push_back(item);
    if (static_cast<std::int64_t>(current.size()) == size) batches.push_back(Value::list(std::exchange(current, {})));
  }
  if (!current.empty()) {
    if (a.given(1) && !a[1].is_none())
      while (static_cast<std::int64_t>(current.size()) < size) current.push_back(a[1]);
    batches.push_back(Value::list(std::move(current)));
  }
  return Value::list(std::move(batches));
}

Value filter_capitalize(Evaluator&, const Value& input, const CallArgs&) { return capitalize(input.str()); }

Value filter_center(Evaluator& evaluator, const Value& input, const CallArgs& args) {
  const Arguments a(args, "center", {"width"});
  const std::int64_t width = a.given(0) ? int_argument(a[0], "width") : 80;
  const std::string text = input.str();
  const auto length = static_cast<std::int64_t>(count_code_points(text));
  if (width <= length) return text;
  check_size(evaluator, static_cast<std::uint64_t>(width));
  const std::int64_t margin = width - length;
  const std::int64_t left = margin / 2 + (margin & width & 1);  // CPython's str.center
  return std::string(static_cast<std::size_t>(left), ' ') + text + std::string(static_cast<std::size_t>(margin - left), ' ');
}

Value filter_default(Evaluator&, const Value& input, const CallArgs& args) {
  const Arguments a(args, "default", {"default_value", "boolean"});
  const bool use_default = input.is_undefined() || (a[1].truthy() && !input.truthy());
  return use_default ? a.get(0, Value("")) : input;
}

Value filter_dictsort(Evaluator&, const Value& input, const CallArgs& args) {
  const Arguments a(args, "dictsort", {"case_sensitive", "by", "reverse"});
  if (!input.is_dict()) raise_type_error("dictsort: can only sort a mapping");
  const bool case_sensitive = a[0].truthy();
  const std::string by = a.get(1, Value("key")).str();
  if (by != "key" && by != "value") raise("FilterArgumentError", "You can only sort by either \"key\" or \"value\"");
  const std::size_t position = by == "key" ? 0 : 1;
  std::vector<Value> pairs;
  for (const auto& [key, value] : input.as_dict().entries) pairs.push_back(Value::tuple({key, value}));
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    return python_less(fold_case(x.items()[position], case_sensitive), fold_case(y.items()[position], case_sensitive));
  });
  if (a[2].truthy()) std::reverse(pairs.begin(), pairs.end());
  return Value::list(std::move(pairs));
}

Value filter_escape(Evaluator&, const Value& input, const CallArgs&) {
  std::string out;
  for (char c : input.str()) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

Value filter_first(Evaluator&, const Value& input, const CallArgs&) {
  if (input.is_sequence()) return input.items().empty() ? Value::undefined("No first item, sequence was empty.") : input.items().front();
  const std::vector<Value> items = iterate(input);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value filter_last(Evaluator&, const Value& input, const CallArgs&) {
  if (input.is_sequence()) return input.items().empty() ? Value::undefined("No last item, sequence was empty.") : input.items().back();
  const std::vector<Value> items = iterate(input);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

// Python float() of a string: surrounding whitespace, underscores between digits, inf/nan.
std::optional<double> parse_python_float(const std::string& text) {
  std::string cleaned = python_strip(text, StripSide::both);
  std::erase(cleaned, '_');
  if (cleaned.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(cleaned.c_str(), &end);
  if (end != cleaned.c_str() + cleaned.size()) return std::nullopt;
  if (cleaned.find_first_of("xXpP") != std::string::npos) return std::nullopt;  // strtod's hex floats
  return value;
}

// Python int(text, base): sign, optional base prefix, underscores between digits.
std::optional<std::int64_t> parse_python_int(const std::string& text, int base) {
  std::string cleaned = python_strip(text, StripSide::both);
  if (cleaned.empty() || cleaned.find("__") != std::string::npos || cleaned.back() == '_') return std::nullopt;
  std::erase(cleaned, '_');
  std::size_t start = (cleaned[0] == '-' || cleaned[0] == '+') ? 1 : 0;
  const std::string prefix = cleaned.size() > start + 1 ? lower(cleaned.substr(start, 2)) : "";
  if ((base == 16 && prefix == "0x") || (base == 8 && prefix == "0o") || (base == 2 && prefix == "0b"))
    cleaned.erase(start, 2);
  if (cleaned.size() <= start) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(cleaned.c_str(), &end, base);
  if (errno == ERANGE || end != cleaned.c_str() + cleaned.size()) return std::nullopt;
  return value;
}

Value filter_float(Evaluator&, const Value& input, const CallArgs& args) {
  const Arguments a(args, "float", {"default"});
  if (input.is_number()) return input.as_number();
  if (input.is_string())
    if (auto value = parse_python_float(input.as_string())) return *value;
  return a.get(0, Value(0.0));
}

Value filter_int(Evaluator&, const Value& input, const CallArgs& args) {
  const Arguments a(args, "int", {"default", "base"});
  if (input.is_integer() || input.is_boolean()) return input.as_int_like();
  if (input.is_floating() && std::isfinite(input.as_double()) && std::fabs(input.as_double()) < 9.2e18)
    return static_cast<std::int64_t>(input.as_double());
  if (input.is_string()) {
    const int base = a.given(1) ? static_cast<int>(int_argument(a[1], "base")) : 10;
    if (auto value = parse_python_int(input.as_string(), base)) return *value;
    if (auto value = parse_python_float(input.as_string()); value && std::isfinite(*value) && std::fabs(*value) < 9.2e18)
      return static_cast<std::int64_t>(*value);
  }
  return a.get(0, Value(0));
}

Value filter_format(Evaluator&, const Value& input, const CallArgs& args) {
  if (!args.keywords.empty() && !args.positional.empty())
    raise("FilterArgumentError", "can't handle positional and keyword arguments at the same time");
  if (!args.keywords.empty()) {
    Value mapping = Value::dict();
    for (const auto& [name, value] : args.keywords) mapping.set(name, value);
    return python_percent_format(input.str(), mapping);
  }
  return python_percent_format(input.str(), Value::tuple(args.positional));
}

Value filter_indent(Evaluator& evaluator, const Value& input, const CallArgs& args) {
  const Arguments a(args, "indent", {"width", "first", "blank"});
  const std::string indentation = a[0].is_string() ? a[0].as_string()
                                  : std::string(static_cast<std::size_t>(std::max<std::int64_t>(0, a.given(0) ? int_argument(a[0], "width") : 4)), ' ');
  const std::string text = input.str() + "\n";  // jinja appends a newline, then splitlines() drops it
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' || text[i] == '\r') {
      lines.push_back(text.substr(start, i - start));
      if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      start = i + 1;
    }
  }
  check_size(evaluator, text.size() + lines.size() * indentation.size());
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out.push_back('\n');
    const bool indent_line = i == 0 ? a[1].truthy() : (a[2].truthy() || !lines[i].empty());
    if (indent_line) out += indentation;
    out += lines[i];
  }
  return out;
}

Value filter_items(Evaluator&, const Value& input, const CallArgs&) {
  if (input.is_undefined()) return Value::list();
  if (!input.is_dict()) raise_type_error("Can only get item pairs from a mapping.");
  std::vector<Value> pairs;
  for (const auto& [key, value] : input.as_dict().entries) pairs.push_back(Value::tuple({key, value}));
  return Value::list(std::move(pairs));
}

Value filter_join(Evaluator& evaluator, const Value& input, const CallArgs& args) {
  const Arguments a(args, "join", {"d", "attribute"});
  const std::string separator = a.given(0) ? a[0].str() : "";
  std::string out;
  bool first = true;
  for (const Value& item : iterate(input)) {
    if (!first) out += separator;
    first = false;
    out += a.given(1) && !a[1].is_none() ? lookup_path(item, a[1].str()).str() : item.str();
    check_size(evaluator, out.size());
  }
  return out;
}

Value filter_length(Evaluator&, const Value& input, const CallArgs&) { return static_cast<std::int64_t>(python_length(input)); }
Value filter_list(Evaluator&, const Value& input, const CallArgs&) { return Value::list(iterate(input)); }
Value filter_lower(Evaluator&, const Value& input, const CallArgs&) { return lower(input.str()); }
Value filter_upper(Evaluator&, const Value& input, const CallArgs&) { return upper(input.str()); }

Value filter_map(Evaluator& evaluator, const Value& input, const CallArgs& args) {
  std::vector<Value> out;
  const auto attribute = std::find_if(args.keywords.begin(), args.keywords.end(), [](const auto& k) { return k.first == "attribute"; });
  if (args.positional.empty() && attribute != args.keywords.end()) {
    const auto fallback = std::find_if(args.keywords.begin(), args.keywords.end(), [](const auto& k) { return k.first == "default"; });
    for (const Value& item : iterate(input)) {
      Value value = lookup_path(item, attribute->second.str());
      out.push_back(value.is_undefined() && fallback != args.keywords.end() ? fallback->second : value);
    }
    return Value::list(std::move(out));
  }
  if (args.positional.empty()) raise("FilterArgumentError", "map requires a filter argument");
  const std::string name = args.positional[0].str();
  CallArgs filter_args{std::vector<Value>(args.positional.begin() + 1, args.positional.end()), args.keywords};
  for (const Value& item : iterate(input)) out.push_back(evaluator.apply_filter(name, item, filter_args));
  return Value::list(std::move(out));
}

// select / reject / selectattr / rejectattr: keep items whose (attribute's) test result is `keep`.
Value select_items(Evaluator& evaluator, const Value& input, const CallArgs& args, bool by_attribute, bool keep) {
  std::size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty()) raise_type_error("selectattr/rejectattr need an attribute name");
    attribute = args.positional[next++].str();
  }
  std::string test;
  if (next < args.positional.size()) test = args.positional[next++].str();
  const CallArgs test_args{std::vector<Value>(args.positional.begin() + static_cast<std::ptrdiff_t>(next), args.positional.end()), args.keywords};
  std::vector<Value> out;
  for (const Value& item : iterate(input)) {
    const Value subject = by_attribute ? lookup_path(item, attribute) : item;
    const bool passed = test.empty() ? subject.truthy() : evaluator.apply_test(test, subject, test_args);
    if (passed == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value filter_select(Evaluator& e, const Value& input, const CallArgs& args) { return select_items(e, input, args, false, true); }
Value filter_reject(Evaluator& e, const Value& input, const CallArgs& args) { return select_items(e, input, args, false, false); }
Value filter_selectattr(Evaluator& e, const Value& input, const CallArgs& args) { return select_items(e, input, args, true, true); }
Value filter_rejectattr(Evaluator& e, const Value& input, const CallArgs& args) { return select_items(e, input, args, true, false); }

Value extreme(const Value& input, const CallArgs& args, const char* name, bool want_max) {
  const Arguments a(args, name, {"case_sensitive", "attribute"});
  const std::vector<Value> items = iterate(input);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  std::size_t best = 0;
  Value best_key = sort_key(items[0], a[1], a[0].truthy());
  for (std::size_t i = 1; i < items.size(); ++i) {
    Value key = sort_key(items[i], a[1], a[0].truthy());
    if (want_max ? python_less(best_key, key) : python_less(key, best_key)) {
      best = i;
      best_key = std::move(key);
    }
  }
  return items[best];
}

Value filter_max(Evaluator&, const Value& input, const CallArgs& args) { return extreme(input, args, "max", true); }
Value filter_min(Evaluator&, const Value& input, const CallArgs& args) { return extreme(input, args, "min", false); }

// str.replace semantics on code points (an empty `old` inserts between characters).
std::string replace_text(const std::string& text, const std::string& old, const std::string& replacement, std::int64_t count) {
  std::string out;
  if (old.empty()) {
    const std::u32string code_points = decode_utf8(text);
    for (std::size_t i = 0; i <= code_points.size(); ++i) {
      if (count < 0 || static_cast<std::int64_t>(i) < count) out += replacement;
      if (i < code_points.size()) append_utf8(out, code_points[i]);
    }
    return out;
  }
  std::size_t start = 0;
  for (std::int64_t done = 0; count < 0 || done < count; ++done) {
    const std::size_t found = text.find(old, start);
    if (found == std::string::npos) break;
    out.append(text, start, found - start);
    out += replacement;
    start = found + old.size();
  }
  out.append(text, start);
  return out;
}

Value filter_replace(Evaluator& evaluator, const Value& input, const CallArgs& args) {
  const Arguments a(args, "replace", {"old", "new", "count"});
  const std::string text = input.str();
  const std::string old = a[0].str(), replacement = a[1].str();
  const std::int64_t count = a.given(2) && !a[2].is_none() ? int_argument(a[2], "count") : -1;
  const std::uint64_t occurrences = old.empty() ? count_code_points(text) + 1 : text.size() / old.size();
  check_size(evaluator, text.size() + occurrences * replacement.size());
  return replace_text(text, old, replacement, count);
}

Value filter_reverse(Evaluator&, const Value& input, const CallArgs&) {
  if (input.is_string()) {
    std::u32string code_points = decode_utf8(input.as_string());
    std::reverse(code_points.begin(), code_points.end());
    return encode_utf8(code_points);
  }
  std::vector<Value> items = iterate(input);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

// Python's round(x, n): the correctly rounded decimal, ties to even.
double round_half_even(double value, std::int64_t digits) {
  if (!std::isfinite(value)) return value;
  if (digits >= 0) {
    char buffer[512];
    std::snprintf(buffer, sizeof buffer, "%.*f", static_cast<int>(std::min<std::int64_t>(digits, 300)), value);
    return std::strtod(buffer, nullptr);
  }
  const double scale = std::pow(10.0, static_cast<double>(-digits));
  return std::nearbyint(value / scale) * scale;
}

Value filter_round(Evaluator&, const Value& input, const CallArgs& args) {
  const Arguments a(args, "round", {"precision", "method"});
  const std::int64_t precision = a.given(0) ? int_argument(a[0], "precision") : 0;
  const std::string method = a.given(1) ? a[1].str() : "common";
  if (method != "common" && method != "ceil" && method != "floor")
    raise("FilterArgumentError", "method must be common, ceil or floor");
  if (!input.is_number()) raise_type_error(fmt::format("type {} doesn't define __round__ method", input.type_name()));
  if (method == "common") {
    if (!input.is_floating() && precision >= 0) return input.as_int_like();  // round(int, n) stays an int
    const double rounded = round_half_even(input.as_number(), precision);
    return input.is_floating() ? Value(rounded) : Value(static_cast<std::int64_t>(rounded));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double scaled = input.as_number() * scale;
  return (method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale;
}

Value filter_slice(Evaluator&, const Value& input, const CallArgs& args) {
  const Arguments a(args, "slice", {"slices", "fill_with"});
  const std::int64_t slices = int_argument(a[0], "slices");
  if (slices < 1 || slices > 100000) raise("ValueError", "slices must be between 1 and 100000");
  const std::vector<Value> items = iterate(input);
  const auto length = static_cast<std::int64_t>(items.size());
  const std::int64_t per_slice = length / slices, with_extra = length % slices;
  std::vector<Value> out;
  std::int64_t offset = 0;
  for (std::int64_t number = 0; number < slices; ++number) {
    const std::int64_t start = offset + number * per_slice;
    if (number < with_extra) ++offset;
    const std::int64_t end = offset + (number + 1) * per_slice;
    std::vector<Value> part(items.begin() + start, items.begin() + end);
    if (a.given(1) && !a[1].is_none() && number >= with_extra) part.push_back(a[1]);
    out.push_back(Value::list(std::move(part)));
  }
  return Value::list(std::move(out));
}

Value filter_sort(Evaluator&, const Value& input, const CallArgs& args) {
  const Arguments a(args, "sort", {"reverse", "case_sensitive", "attribute"});
  std::vector<Value> items = iterate(input);
  std::vector<std::pair<Value, std::size_t>> keyed;
  for (std::size_t i = 0; i < items.size(); ++i) keyed.emplace_back(sort_key(items[i], a[2], a[1].truthy()), i);
  const bool descending = a[0].truthy();
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return descending ? python_less(y.first, x.first) : python_less(x.first, y.first);
  });
  std::vector<Value> out;
  for (const auto& entry : keyed) out.push_back(items[entry.second]);
  return Value::list(std::move(out));
}

Value filter_string(Evaluator&, const Value& input, const CallArgs&) { return input.str(); }

Value filter_sum(Evaluator& evaluator, const Value& input, const CallArgs& args) {
  const Arguments a(args, "sum", {"attribute", "start"});
  Value total = a.get(1, Value(0));
  for (const Value& item : iterate(input)) {
    total = python_binary(Operator::add, total, a.given(0) && !a[0].is_none() ? lookup_path(item, a[0].str()) : item,
                          evaluator.limits().max_output_bytes);
    evaluator.account(total);
  }
  return total;
}

Value filter_title(Evaluator&, const Value& input, const CallArgs&) {
  // jinja's title: words begin after '-', whitespace, '(', '{', '[' or '<'.
  std::string out;
  bool word_start = true;
  for (char32_t c : decode_utf8(input.str())) {
    const bool separator = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_python_space(c);
    append_utf8(out, separator ? c : word_start ? to_upper(c) : to_lower(c));
    word_start = separator;
  }
  return out;
}

Value filter_tojson(Evaluator&, const Value& input, const CallArgs& args) {
  const Arguments a(args, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonFormat format;
  format.ensure_ascii = a[0].truthy();
  if (a[1].is_string()) format.indent = a[1].as_string();
  else if (a[1].is_integer() || a[1].is_boolean()) format.indent = std::string(static_cast<std::size_t>(std::clamp<std::int64_t>(a[1].as_int_like(), 0, 1024)), ' ');
  else if (!a[1].is_none() && !a[1].is_undefined()) raise_type_error("tojson: indent must be an integer or a string");
  if (a[2].is_sequence()) {
    if (a[2].items().size() != 2) raise("ValueError", "tojson: separators must be a pair");
    format.item_separator = a[2].items()[0].str();
    format.key_separator = a[2].items()[1].str();
  }
  format.sort_keys = a[3].truthy();
  return dump_json(input, format);
}

Value filter_trim(Evaluator&, const Value& input, const CallArgs& args) {
  const Arguments a(args, "trim", {"chars"});
  if (a.given(0) && !a[0].is_none()) return python_strip_chars(input.str(), a[0].str(), StripSide::both);
  return python_strip(input.str(), StripSide::both);
}

Value filter_truncate(Evaluator&, const Value& input, const CallArgs& args) {
  const Arguments a(args, "truncate", {"length", "killwords", "end", "leeway"});
  const std::int64_t length = a.given(0) ? int_argument(a[0], "length") : 255;
  const std::string end = a.given(2) ? a[2].str() : "...";
  const std::int64_t leeway = a.given(3) && !a[3].is_none() ? int_argument(a[3], "leeway") : 5;
  const std::u32string text = decode_utf8(input.str());
  const auto end_length = static_cast<std::int64_t>(count_code_points(end));
  if (length < end_length) raise("FilterArgumentError", "expected length >= end length");
  if (static_cast<std::int64_t>(text.size()) <= length + leeway) return input.str();
  std::u32string kept = text.substr(0, static_cast<std::size_t>(length - end_length));
  if (!a[1].truthy()) {
    const std::size_t space = kept.rfind(U' ');
    if (space != std::u32string::npos) kept.resize(space);
  }
  return encode_utf8(kept) + end;
}

Value filter_unique(Evaluator&, const Value& input, const CallArgs& args) {
  const Arguments a(args, "unique", {"case_sensitive", "attribute"});
  std::vector<Value> out, seen;
  for (const Value& item : iterate(input)) {
    Value key = sort_key(item, a[1], a[0].truthy());
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return python_equals(s, key); })) continue;
    seen.push_back(std::move(key));
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value filter_wordcount(Evaluator&, const Value& input, const CallArgs&) {
  std::int64_t words = 0;
  bool in_word = false;
  for (char32_t c : decode_utf8(input.str())) {
    const bool word = is_word_char(c);
    if (word && !in_word) ++words;
    in_word = word;
  }
  return words;
}

const std::unordered_map<std::string_view, FilterFunction>& filter_table() {
  static const std::unordered_map<std::string_view, FilterFunction> table = {
      {"abs", filter_abs}, {"attr", filter_attr}, {"batch", filter_batch}, {"capitalize", filter_capitalize},
      {"center", filter_center}, {"count", filter_length}, {"d", filter_default}, {"default", filter_default},
      {"dictsort", filter_dictsort}, {"e", filter_escape}, {"escape", filter_escape}, {"first", filter_first},
      {"float", filter_float}, {"forceescape", filter_escape}, {"format", filter_format}, {"indent", filter_indent},
      {"int", filter_int}, {"items", filter_items}, {"join", filter_join}, {"last", filter_last},
      {"length", filter_length}, {"list", filter_list}, {"lower", filter_lower}, {"map", filter_map},
      {"max", filter_max}, {"min", filter_min}, {"reject", filter_reject}, {"rejectattr", filter_rejectattr},
      {"replace", filter_replace}, {"reverse", filter_reverse}, {"round", filter_round}, {"safe", filter_string},
      {"select", filter_select}, {"selectattr", filter_selectattr}, {"slice", filter_slice}, {"sort", filter_sort},
      {"string", filter_string}, {"sum", filter_sum}, {"title", filter_title}, {"tojson", filter_tojson},
      {"trim", filter_trim}, {"truncate", filter_truncate}, {"unique", filter_unique}, {"upper", filter_upper},
      {"wordcount", filter_wordcount},
  };
  return table;
}

}  // namespace

FilterFunction find_filter(std::string_view name) {
  const auto& table = filter_table();
  const auto found = table.find(name);
  return found == table.end() ? nullptr : found->second;
}

bool is_jinja_filter(std::string_view name) {
  static constexpr std::string_view not_implemented[] = {"filesizeformat", "groupby", "pprint", "random", "striptags",
                                                         "urlencode", "urlize", "wordwrap", "xmlattr"};
  return find_filter(name) != nullptr ||
         std::find(std::begin(not_implemented), std::end(not_implemented), name) != std::end(not_implemented);
}

}  // namespace slm::jinja::detail
