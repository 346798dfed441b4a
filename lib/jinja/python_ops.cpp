#include "lib/jinja/python_ops.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "lib/jinja/builtins.hpp"
#include "lib/jinja/runtime.hpp"
#include "lib/jinja/text.hpp"

namespace slm::jinja::detail {
namespace {

using Kind = Value::Kind;

bool is_int_like(const Value& v) { return v.is_integer() || v.is_boolean(); }

std::string quoted_type(const Value& v) { return fmt::format("'{}'", v.type_name()); }

[[noreturn]] void unsupported_operands(std::string_view symbol, const Value& a, const Value& b) {
  raise_type_error(fmt::format("unsupported operand type(s) for {}: {} and {}", symbol, quoted_type(a), quoted_type(b)));
}

[[noreturn]] void integer_overflow() {
  raise("OverflowError", "integer result does not fit in 64 bits (slm has no big integers)");
}

// a op b with the overflow check of __builtin_{add,sub,mul}_overflow.
template <typename Overflowing>
std::int64_t checked(Overflowing operation, std::int64_t a, std::int64_t b) {
  std::int64_t result = 0;
  if (operation(a, b, &result)) integer_overflow();
  return result;
}
bool add_overflow(std::int64_t a, std::int64_t b, std::int64_t* r) { return __builtin_add_overflow(a, b, r); }
bool sub_overflow(std::int64_t a, std::int64_t b, std::int64_t* r) { return __builtin_sub_overflow(a, b, r); }
bool mul_overflow(std::int64_t a, std::int64_t b, std::int64_t* r) { return __builtin_mul_overflow(a, b, r); }

std::string_view symbol_of(Operator op) {
  switch (op) {
    case Operator::add: return "+";
    case Operator::subtract: return "-";
    case Operator::multiply: return "*";
    case Operator::divide: return "/";
    case Operator::floor_divide: return "//";
    case Operator::modulo: return "%";
    case Operator::power: return "**";
    default: return "?";
  }
}

Value repeat(const Value& sequence, std::int64_t count, std::size_t max_size) {
  if (count <= 0) return sequence.is_string() ? Value("") : sequence.is_tuple() ? Value::tuple({}) : Value::list({});
  const std::size_t unit = sequence.is_string() ? sequence.as_string().size() : sequence.items().size();
  if (!sequence.is_string()) max_size = std::min(max_size, max_list_items);
  if (unit != 0 && static_cast<std::uint64_t>(count) > max_size / unit)
    raise("MemoryError", fmt::format("repeating a {} {} times exceeds the size limit of {}", sequence.type_name(), count, max_size));
  if (sequence.is_string()) {
    std::string out;
    out.reserve(unit * static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) out += sequence.as_string();
    return Value(std::move(out));
  }
  std::vector<Value> items;
  items.reserve(unit * static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) items.insert(items.end(), sequence.items().begin(), sequence.items().end());
  return sequence.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
}

Value integer_arithmetic(Operator op, std::int64_t a, std::int64_t b) {
  switch (op) {
    case Operator::add: return checked(add_overflow, a, b);
    case Operator::subtract: return checked(sub_overflow, a, b);
    case Operator::multiply: return checked(mul_overflow, a, b);
    case Operator::divide:
      if (b == 0) raise("ZeroDivisionError", "division by zero");
      return static_cast<double>(a) / static_cast<double>(b);
    case Operator::floor_divide:
    case Operator::modulo: {
      if (b == 0) raise("ZeroDivisionError", op == Operator::modulo ? "integer modulo by zero" : "integer division or modulo by zero");
      if (a == std::numeric_limits<std::int64_t>::min() && b == -1) integer_overflow();
      std::int64_t quotient = a / b, remainder = a % b;
      if (remainder != 0 && ((remainder < 0) != (b < 0))) {  // Python floors toward -infinity
        --quotient;
        remainder += b;
      }
      return op == Operator::modulo ? remainder : quotient;
    }
    case Operator::power: {
      if (b < 0) {
        if (a == 0) raise("ZeroDivisionError", "0.0 cannot be raised to a negative power");
        return std::pow(static_cast<double>(a), static_cast<double>(b));
      }
      std::int64_t result = 1, base = a;
      for (std::int64_t e = b; e > 0; e >>= 1) {
        if (e & 1) result = checked(mul_overflow, result, base);
        if (e > 1) base = checked(mul_overflow, base, base);
      }
      return result;
    }
    default: return Value();
  }
}

Value float_arithmetic(Operator op, double a, double b) {
  switch (op) {
    case Operator::add: return a + b;
    case Operator::subtract: return a - b;
    case Operator::multiply: return a * b;
    case Operator::divide:
      if (b == 0) raise("ZeroDivisionError", "float division by zero");
      return a / b;
    case Operator::floor_divide:
    case Operator::modulo: {
      if (b == 0) raise("ZeroDivisionError", op == Operator::modulo ? "float modulo" : "float floor division by zero");
      double mod = std::fmod(a, b);
      double div = (a - mod) / b;
      if (mod != 0) {
        if ((b < 0) != (mod < 0)) {
          mod += b;
          div -= 1.0;
        }
      } else {
        mod = std::copysign(0.0, b);
      }
      if (op == Operator::modulo) return mod;
      double floor_div = std::floor(div);
      if (div - floor_div > 0.5) floor_div += 1.0;
      return div == 0 ? std::copysign(0.0, a / b) : floor_div;
    }
    case Operator::power:
      if (a == 0 && b < 0) raise("ZeroDivisionError", "0.0 cannot be raised to a negative power");
      return std::pow(a, b);
    default: return Value();
  }
}

// Python slice bounds (PySlice_AdjustIndices): the visited indices for a length.
std::vector<std::size_t> slice_indices(std::size_t length, const Value& start_value, const Value& stop_value, const Value& step_value) {
  auto as_index = [](const Value& v, const char* what) -> std::optional<std::int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!is_int_like(v)) raise_type_error(fmt::format("slice {} must be an integer or None", what));
    return v.as_int_like();
  };
  const auto n = static_cast<std::int64_t>(length);
  const std::int64_t step = as_index(step_value, "step").value_or(1);
  if (step == 0) raise("ValueError", "slice step cannot be zero");
  auto adjust = [&](std::optional<std::int64_t> index, std::int64_t fallback) {
    if (!index) return fallback;
    std::int64_t i = *index;
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  const std::int64_t start = adjust(as_index(start_value, "indices"), step < 0 ? n - 1 : 0);
  const std::int64_t stop = adjust(as_index(stop_value, "indices"), step < 0 ? -1 : n);
  std::vector<std::size_t> indices;
  for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) indices.push_back(static_cast<std::size_t>(i));
  return indices;
}

Value missing_attribute(const Value& object, const std::string& name) {
  const std::string owner = object.is_none() ? std::string("'None'") : fmt::format("'{} object'", object.type_name());
  return Value::undefined(fmt::format("{} has no attribute '{}'", owner, name));
}

}  // namespace

bool python_equals(const Value& a, const Value& b) {
  charge_traversal(traversal_cost_per_comparison);
  if (a.is_number() && b.is_number()) {
    if (a.is_floating() || b.is_floating()) return a.as_number() == b.as_number();
    return a.as_int_like() == b.as_int_like();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::undefined:
    case Kind::none: return true;
    case Kind::string: return a.as_string() == b.as_string();
    case Kind::list:
    case Kind::tuple: {
      const auto& x = a.items();
      const auto& y = b.items();
      if (&x == &y) return true;  // the same list, as Python's identity shortcut
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (!python_equals(x[i], y[i])) return false;
      return true;
    }
    case Kind::dict: {
      const auto& x = a.as_dict().entries;
      if (&x == &b.as_dict().entries) return true;
      if (x.size() != b.as_dict().entries.size()) return false;
      for (const auto& [key, value] : x) {
        const Value* other = b.as_dict().find(key);
        if (!other || !python_equals(value, *other)) return false;
      }
      return true;
    }
    case Kind::function: return a.as_function() == b.as_function();
    case Kind::object: return a.as_object() == b.as_object();
    default: return false;
  }
}

bool python_less(const Value& a, const Value& b, std::string_view symbol) {
  charge_traversal(traversal_cost_per_comparison);
  if (a.is_undefined()) raise_undefined(a);
  if (b.is_undefined()) raise_undefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_floating() || b.is_floating()) return a.as_number() < b.as_number();
    return a.as_int_like() < b.as_int_like();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 orders by code point
  if (a.kind() == b.kind() && a.is_sequence()) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!python_equals(x[i], y[i])) return python_less(x[i], y[i], symbol);
    return x.size() < y.size();
  }
  raise_type_error(fmt::format("'{}' not supported between instances of {} and {}", symbol, quoted_type(a), quoted_type(b)));
}

bool python_contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::undefined: return false;
    case Kind::string:
      if (!item.is_string())
        raise_type_error(fmt::format("'in <string>' requires string as left operand, not {}", item.type_name()));
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Kind::list:
    case Kind::tuple:
      for (const Value& element : container.items())
        if (python_equals(element, item)) return true;
      return false;
    case Kind::dict: return container.as_dict().find(item) != nullptr;
    default: raise_type_error(fmt::format("argument of type {} is not iterable", quoted_type(container)));
  }
}

Value python_binary(Operator op, const Value& a, const Value& b, std::size_t max_size) {
  if (op == Operator::concat) return Value(a.str() + b.str());
  if (a.is_undefined()) raise_undefined(a);
  if (b.is_undefined()) raise_undefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_floating() || b.is_floating()) return float_arithmetic(op, a.as_number(), b.as_number());
    return integer_arithmetic(op, a.as_int_like(), b.as_int_like());
  }
  switch (op) {
    case Operator::add:
      if (a.is_string() && b.is_string()) {
        if (a.as_string().size() + b.as_string().size() > max_size)
          raise("MemoryError", fmt::format("string exceeds the size limit of {} bytes", max_size));
        return Value(a.as_string() + b.as_string());
      }
      if (a.is_sequence() && a.kind() == b.kind()) {
        if (a.items().size() + b.items().size() > max_list_items)
          raise("MemoryError", fmt::format("{} exceeds the limit of {} items", a.type_name(), max_list_items));
        std::vector<Value> items = a.items();
        items.insert(items.end(), b.items().begin(), b.items().end());
        return a.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
      }
      if (a.is_string() || a.is_sequence())
        raise_type_error(fmt::format("can only concatenate {} (not \"{}\") to {}", a.type_name(), b.type_name(), a.type_name()));
      unsupported_operands("+", a, b);
    case Operator::multiply:
      if ((a.is_string() || a.is_sequence()) && is_int_like(b)) return repeat(a, b.as_int_like(), max_size);
      if ((b.is_string() || b.is_sequence()) && is_int_like(a)) return repeat(b, a.as_int_like(), max_size);
      if (a.is_string() || a.is_sequence() || b.is_string() || b.is_sequence())
        raise_type_error(fmt::format("can't multiply sequence by non-int of type {}",
                                     quoted_type(a.is_string() || a.is_sequence() ? b : a)));
      unsupported_operands("*", a, b);
    case Operator::modulo:
      if (a.is_string()) return Value(python_percent_format(a.as_string(), b));
      unsupported_operands("%", a, b);
    default: unsupported_operands(symbol_of(op), a, b);
  }
}

Value python_unary(Operator op, const Value& operand) {
  if (op == Operator::logical_not) return !operand.truthy();
  if (operand.is_undefined()) raise_undefined(operand);
  if (operand.is_floating()) return op == Operator::negate ? -operand.as_double() : operand.as_double();
  if (is_int_like(operand)) {
    if (op == Operator::plus) return operand.as_int_like();
    if (operand.as_int_like() == std::numeric_limits<std::int64_t>::min()) integer_overflow();
    return -operand.as_int_like();
  }
  raise_type_error(fmt::format("bad operand type for unary {}: {}", op == Operator::negate ? "-" : "+", quoted_type(operand)));
}

Value get_attribute(const Value& object, const std::string& name) {
  if (object.is_undefined()) raise_undefined(object);
  if (auto method = find_method(object, name)) return *method;
  if (object.is_dict()) {
    if (const Value* value = object.as_dict().find(std::string_view(name))) return *value;
  } else if (object.is_object()) {
    if (const Value* value = object.as_object()->attributes.find(std::string_view(name))) return *value;
  }
  return missing_attribute(object, name);
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_undefined()) raise_undefined(object);
  if (object.is_dict()) {
    if (const Value* value = object.as_dict().find(key)) return *value;
  } else if (object.is_sequence() && is_int_like(key)) {
    const auto& items = object.items();
    std::int64_t index = key.as_int_like();
    if (index < 0) index += static_cast<std::int64_t>(items.size());
    if (index >= 0 && index < static_cast<std::int64_t>(items.size())) return items[static_cast<std::size_t>(index)];
    return Value::undefined(fmt::format("'{} object' has no element {}", object.type_name(), key.as_int_like()));
  } else if (object.is_string() && is_int_like(key)) {
    const std::u32string text = decode_utf8(object.as_string());
    std::int64_t index = key.as_int_like();
    if (index < 0) index += static_cast<std::int64_t>(text.size());
    if (index >= 0 && index < static_cast<std::int64_t>(text.size()))
      return Value(encode_utf8(std::u32string_view(text).substr(static_cast<std::size_t>(index), 1)));
    return Value::undefined(fmt::format("'str object' has no element {}", key.as_int_like()));
  }
  if (key.is_string()) {
    if (auto method = find_method(object, key.as_string())) return *method;
    if (object.is_object())
      if (const Value* value = object.as_object()->attributes.find(std::string_view(key.as_string()))) return *value;
    return missing_attribute(object, key.as_string());
  }
  return Value::undefined(fmt::format("'{} object' has no element {}", object.type_name(), key.repr()));
}

Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step) {
  if (object.is_undefined()) raise_undefined(object);
  if (object.is_string()) {
    const std::u32string text = decode_utf8(object.as_string());
    std::u32string out;
    for (std::size_t i : slice_indices(text.size(), start, stop, step)) out.push_back(text[i]);
    return Value(encode_utf8(out));
  }
  if (object.is_sequence()) {
    std::vector<Value> out;
    for (std::size_t i : slice_indices(object.items().size(), start, stop, step)) out.push_back(object.items()[i]);
    return object.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
  }
  return Value::undefined(fmt::format("'{} object' is not subscriptable", object.type_name()));
}

std::vector<Value> iterate(const Value& value) {
  switch (value.kind()) {
    case Kind::undefined: return {};
    case Kind::list:
    case Kind::tuple: return value.items();
    case Kind::dict: {
      std::vector<Value> keys;
      keys.reserve(value.as_dict().entries.size());
      for (const auto& entry : value.as_dict().entries) keys.push_back(entry.first);
      return keys;
    }
    case Kind::string: {
      const std::u32string code_points = decode_utf8(value.as_string());
      if (code_points.size() > max_list_items)
        raise("MemoryError", fmt::format("iterating a string of more than {} characters", max_list_items));
      std::vector<Value> characters;
      characters.reserve(code_points.size());
      std::string character;
      for (char32_t c : code_points) {
        character.clear();
        append_utf8(character, c);
        characters.emplace_back(character);
      }
      return characters;
    }
    default: raise_type_error(fmt::format("{} object is not iterable", quoted_type(value)));
  }
}

std::size_t python_length(const Value& value) {
  switch (value.kind()) {
    case Kind::undefined: return 0;
    case Kind::string: return count_code_points(value.as_string());
    case Kind::list:
    case Kind::tuple: return value.items().size();
    case Kind::dict: return value.as_dict().entries.size();
    default: raise_type_error(fmt::format("object of type {} has no len()", quoted_type(value)));
  }
}

}  // namespace slm::jinja::detail
