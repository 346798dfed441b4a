// Python's two string formatting mechanisms: "%s and %05.2f" % (a, b) and "{} {x:>5}".format(...).
#include <fmt/format.h>

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <string>

#include "lib/jinja/python_ops.hpp"
#include "lib/jinja/runtime.hpp"
#include "lib/jinja/text.hpp"

namespace slm::jinja::detail {
namespace {

// A width or precision beyond this is refused rather than allocated.
constexpr long max_field_width = 1 << 20;

struct Spec {
  std::string flags;
  long width = -1;
  long precision = -1;
  char conversion = 's';
};

class ArgumentSource {
 public:
  explicit ArgumentSource(const Value& args) : args_(args) {
    if (args.is_tuple()) positional_ = args.items();
    else if (!args.is_dict()) positional_ = {args};
  }

  const Value& next() {
    if (index_ >= positional_.size()) raise_type_error("not enough arguments for format string");
    return positional_[index_++];
  }

  const Value& named(const std::string& key) {
    if (!args_.is_dict()) raise_type_error("format requires a mapping");
    const Value* value = args_.as_dict().find(std::string_view(key));
    if (!value) raise("KeyError", python_string_repr(key));
    used_mapping_ = true;
    return *value;
  }

  void check_all_used() const {
    if (!used_mapping_ && !args_.is_dict() && index_ < positional_.size())
      raise_type_error("not all arguments converted during string formatting");
  }

 private:
  const Value& args_;
  std::vector<Value> positional_;
  std::size_t index_ = 0;
  bool used_mapping_ = false;
};

std::string pad(std::string text, const Spec& spec) {
  const long length = static_cast<long>(count_code_points(text));
  if (spec.width <= length) return text;
  const std::string padding(static_cast<std::size_t>(spec.width - length), ' ');
  return spec.flags.find('-') != std::string::npos ? text + padding : padding + text;
}

std::string format_number(const Value& value, const Spec& spec) {
  if (value.is_undefined()) raise_undefined(value);
  if (!value.is_number())
    raise_type_error(fmt::format("%{} format: a {} is required, not {}", spec.conversion,
                                 std::string_view("diouxXc").find(spec.conversion) != std::string_view::npos ? "number" : "real number",
                                 value.type_name()));
  std::string format = "%" + spec.flags;
  if (spec.width >= 0) format += std::to_string(spec.width);
  if (spec.precision >= 0) format += fmt::format(".{}", spec.precision);
  const bool integral = std::string_view("diouxX").find(spec.conversion) != std::string_view::npos;
  if (integral) {
    double number = value.as_number();
    if (value.is_floating() && !std::isfinite(number))
      raise("OverflowError", "cannot convert float infinity or NaN to integer");
    const long long integer = value.is_floating() ? static_cast<long long>(number) : value.as_int_like();
    const char conversion = spec.conversion == 'i' || spec.conversion == 'u' ? 'd' : spec.conversion;
    format += "ll";
    format.push_back(conversion);
    std::string out(static_cast<std::size_t>(std::max(spec.width, 0L)) + 64, '\0');
    const int n = std::snprintf(out.data(), out.size(), format.c_str(), integer);
    out.resize(static_cast<std::size_t>(n));
    // Python's alternate octal form is 0o17, C's is 017.
    if (conversion == 'o' && spec.flags.find('#') != std::string::npos) {
      const std::size_t zero = out.find('0');
      if (zero != std::string::npos) out.insert(zero + 1, 1, 'o');
    }
    return out;
  }
  format.push_back(spec.conversion);
  const std::size_t size = static_cast<std::size_t>(std::max(spec.width, 0L) + std::max(spec.precision, 0L)) + 400;
  std::string out(size, '\0');
  const int n = std::snprintf(out.data(), out.size(), format.c_str(), value.as_number());
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string format_one(const Value& value, const Spec& spec) {
  switch (spec.conversion) {
    case 's':
    case 'r':
    case 'a': {
      std::string text = spec.conversion == 's' ? value.str() : value.repr();
      if (spec.precision >= 0) {
        const std::u32string code_points = decode_utf8(text);
        if (static_cast<std::size_t>(spec.precision) < code_points.size())
          text = encode_utf8(std::u32string_view(code_points).substr(0, static_cast<std::size_t>(spec.precision)));
      }
      return pad(std::move(text), spec);
    }
    case 'c': {
      std::string text;
      if (value.is_string() && count_code_points(value.as_string()) == 1) text = value.as_string();
      else if (value.is_integer() && value.as_int() >= 0 && value.as_int() <= 0x10FFFF) append_utf8(text, static_cast<char32_t>(value.as_int()));
      else raise_type_error("%c requires int or char");
      return pad(std::move(text), spec);
    }
    default: return format_number(value, spec);
  }
}

}  // namespace

std::string python_percent_format(std::string_view format, const Value& args) {
  ArgumentSource source(args);
  std::string out;
  std::size_t i = 0;
  auto read_number = [&](long& target) {
    if (i < format.size() && format[i] == '*') {
      const Value& v = source.next();
      if (!v.is_integer()) raise_type_error("* wants int");
      target = static_cast<long>(v.as_int());
      ++i;
      return;
    }
    if (i >= format.size() || format[i] < '0' || format[i] > '9') return;
    target = 0;
    while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
      target = target * 10 + (format[i++] - '0');
      if (target > max_field_width) raise("ValueError", "width or precision too big");
    }
  };
  while (i < format.size()) {
    const char c = format[i++];
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i >= format.size()) raise("ValueError", "incomplete format");
    std::string key;
    bool has_key = false;
    if (format[i] == '(') {
      const std::size_t close = format.find(')', i);
      if (close == std::string_view::npos) raise("ValueError", "incomplete format key");
      key = std::string(format.substr(i + 1, close - i - 1));
      has_key = true;
      i = close + 1;
    }
    Spec spec;
    while (i < format.size() && std::string_view("#0- +").find(format[i]) != std::string_view::npos) spec.flags.push_back(format[i++]);
    read_number(spec.width);
    if (spec.width < 0 && spec.width != -1) {
      spec.flags.push_back('-');
      spec.width = -spec.width;
    }
    if (i < format.size() && format[i] == '.') {
      ++i;
      spec.precision = 0;
      read_number(spec.precision);
    }
    while (i < format.size() && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L')) ++i;
    if (i >= format.size()) raise("ValueError", "incomplete format");
    spec.conversion = format[i++];
    if (spec.conversion == '%') {
      out.push_back('%');
      continue;
    }
    if (std::string_view("sradiouxXeEfFgGc").find(spec.conversion) == std::string_view::npos)
      raise("ValueError", fmt::format("unsupported format character '{}'", spec.conversion));
    out += format_one(has_key ? source.named(key) : source.next(), spec);
  }
  source.check_all_used();
  return out;
}

namespace {

// One replacement field's spec: [[fill]align][sign][#][0][width][,|_][.precision][type].
struct FormatSpec {
  std::string fill = " ";
  char align = 0;
  char sign = '-';
  bool alternate = false;
  long width = -1;
  char grouping = 0;
  long precision = -1;
  char type = 0;
};

FormatSpec parse_format_spec(std::string_view spec) {
  FormatSpec out;
  const std::u32string text = decode_utf8(spec);
  std::size_t i = 0;
  auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '=' || c == '^'; };
  if (text.size() >= 2 && is_align(text[1])) {
    out.fill.clear();
    append_utf8(out.fill, text[0]);
    out.align = static_cast<char>(text[1]);
    i = 2;
  } else if (!text.empty() && is_align(text[0])) {
    out.align = static_cast<char>(text[0]);
    i = 1;
  }
  if (i < text.size() && (text[i] == '+' || text[i] == '-' || text[i] == ' ')) out.sign = static_cast<char>(text[i++]);
  if (i < text.size() && text[i] == '#') {
    out.alternate = true;
    ++i;
  }
  if (i < text.size() && text[i] == '0') {
    if (!out.align) {
      out.fill = "0";
      out.align = '=';
    }
    ++i;
  }
  auto read_number = [&](long& target) {
    if (i >= text.size() || text[i] < '0' || text[i] > '9') return;
    target = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      target = target * 10 + static_cast<long>(text[i++] - '0');
      if (target > max_field_width) raise("ValueError", "width or precision too big");
    }
  };
  read_number(out.width);
  if (i < text.size() && (text[i] == ',' || text[i] == '_')) out.grouping = static_cast<char>(text[i++]);
  if (i < text.size() && text[i] == '.') {
    ++i;
    out.precision = 0;
    read_number(out.precision);
  }
  if (i < text.size()) out.type = static_cast<char>(text[i++]);
  if (i != text.size()) raise("ValueError", "Invalid format specifier");
  return out;
}

std::string group_digits(std::string digits, char separator) {
  const std::size_t end = std::min(digits.find('.'), digits.size());
  for (std::size_t at = end; at > 3; at -= 3) digits.insert(at - 3, 1, separator);
  return digits;
}

std::string apply_format_spec(const Value& value, const FormatSpec& spec) {
  std::string sign, body;
  char default_align = '>';
  if (!value.is_number()) {  // strings, and the str() of anything else
    if (spec.type != 0 && spec.type != 's')
      raise("ValueError", fmt::format("Unknown format code '{}' for object of type '{}'", spec.type, value.type_name()));
    body = value.str();
    if (spec.precision >= 0) {
      const std::u32string code_points = decode_utf8(body);
      if (static_cast<std::size_t>(spec.precision) < code_points.size())
        body = encode_utf8(std::u32string_view(code_points).substr(0, static_cast<std::size_t>(spec.precision)));
    }
    default_align = '<';
  } else {
    if (spec.type == 's') raise("ValueError", "Unknown format code 's' for a number");
    const bool integral = !value.is_floating() && std::string_view("dxXobcn").find(spec.type) != std::string_view::npos;
    if (value.is_boolean() && spec.type == 0) {
      body = value.str();
    } else if (integral || (!value.is_floating() && spec.type == 0)) {
      std::int64_t number = value.as_int_like();
      if (number < 0) sign = "-";
      const auto magnitude = static_cast<unsigned long long>(number < 0 ? -(number + 1) + 1ull : number);
      switch (spec.type) {
        case 'x': body = fmt::format("{:x}", magnitude); if (spec.alternate) body = "0x" + body; break;
        case 'X': body = fmt::format("{:X}", magnitude); if (spec.alternate) body = "0X" + body; break;
        case 'o': body = fmt::format("{:o}", magnitude); if (spec.alternate) body = "0o" + body; break;
        case 'b': body = fmt::format("{:b}", magnitude); if (spec.alternate) body = "0b" + body; break;
        case 'c': append_utf8(body, static_cast<char32_t>(magnitude)); sign.clear(); break;
        default: body = std::to_string(magnitude);
      }
    } else {
      double number = value.as_number();
      if (std::signbit(number)) sign = "-";
      number = std::fabs(number);
      const long precision = spec.precision >= 0 ? spec.precision : 6;
      char buffer[512];
      switch (spec.type) {
        case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
          const char format[] = {'%', '.', '*', spec.type, '\0'};
          std::snprintf(buffer, sizeof buffer, format, static_cast<int>(std::min(precision, 300L)), number);
          body = buffer;
          break;
        }
        case '%':
          std::snprintf(buffer, sizeof buffer, "%.*f", static_cast<int>(std::min(precision, 300L)), number * 100);
          body = std::string(buffer) + "%";
          break;
        default:
          if (spec.precision >= 0) {
            std::snprintf(buffer, sizeof buffer, "%.*g", static_cast<int>(std::min(std::max(spec.precision, 1L), 300L)), number);
            body = buffer;
          } else {
            body = python_float_repr(number);
          }
      }
    }
    if (spec.grouping) body = group_digits(std::move(body), spec.grouping);
    if (sign.empty() && spec.sign != '-') sign = std::string(1, spec.sign);
  }
  const long length = static_cast<long>(count_code_points(sign) + count_code_points(body));
  if (spec.width <= length) return sign + body;
  const auto padding = static_cast<std::size_t>(spec.width - length);
  auto fill = [&](std::size_t n) {
    std::string out;
    for (std::size_t k = 0; k < n; ++k) out += spec.fill;
    return out;
  };
  switch (spec.align ? spec.align : default_align) {
    case '<': return sign + body + fill(padding);
    case '^': return fill(padding / 2) + sign + body + fill(padding - padding / 2);
    case '=': return sign + fill(padding) + body;
    default: return fill(padding) + sign + body;
  }
}

}  // namespace

std::string python_str_format(std::string_view format, const CallArgs& args) {
  std::string out;
  std::size_t next_auto = 0;
  std::size_t i = 0;
  while (i < format.size()) {
    const char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') {
        out.push_back('}');
        i += 2;
        continue;
      }
      raise("ValueError", "Single '}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out.push_back('{');
      i += 2;
      continue;
    }
    const std::size_t close = format.find('}', i);
    if (close == std::string_view::npos) raise("ValueError", "Single '{' encountered in format string");
    std::string_view field = format.substr(i + 1, close - i - 1);
    if (field.find('{') != std::string_view::npos) raise("ValueError", "unsupported construct: nested replacement fields in str.format");
    i = close + 1;
    std::string_view spec_text, conversion;
    if (const std::size_t colon = field.find(':'); colon != std::string_view::npos) {
      spec_text = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    if (const std::size_t bang = field.find('!'); bang != std::string_view::npos) {
      conversion = field.substr(bang + 1);
      field = field.substr(0, bang);
    }
    const std::size_t name_end = std::min(field.find_first_of(".["), field.size());
    const std::string_view name = field.substr(0, name_end);
    Value value;
    if (name.empty() || std::all_of(name.begin(), name.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      const std::size_t index = name.empty() ? next_auto++ : std::stoul(std::string(name));
      if (index >= args.positional.size()) raise("IndexError", fmt::format("Replacement index {} out of range for positional args tuple", index));
      value = args.positional[index];
    } else {
      const auto found = std::find_if(args.keywords.begin(), args.keywords.end(), [&](const auto& k) { return k.first == name; });
      if (found == args.keywords.end()) raise("KeyError", python_string_repr(name));
      value = found->second;
    }
    for (std::size_t at = name_end; at < field.size();) {  // .attribute and [key] chains
      if (field[at] == '.') {
        const std::size_t end = std::min(field.find_first_of(".[", at + 1), field.size());
        value = get_attribute(value, std::string(field.substr(at + 1, end - at - 1)));
        at = end;
      } else {
        const std::size_t end = field.find(']', at);
        if (end == std::string_view::npos) raise("ValueError", "Missing ']' in format string");
        const std::string key(field.substr(at + 1, end - at - 1));
        const bool numeric = !key.empty() && std::all_of(key.begin(), key.end(), [](char d) { return d >= '0' && d <= '9'; });
        value = get_item(value, numeric ? Value(std::stoll(key)) : Value(key));
        at = end + 1;
      }
    }
    if (conversion == "r" || conversion == "a") value = Value(value.repr());
    else if (conversion == "s") value = Value(value.str());
    else if (!conversion.empty()) raise("ValueError", fmt::format("Unknown conversion specifier {}", conversion));
    out += apply_format_spec(value, parse_format_spec(spec_text));
  }
  return out;
}

}  // namespace slm::jinja::detail
