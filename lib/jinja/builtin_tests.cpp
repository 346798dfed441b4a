// Jinja's builtin tests (jinja2/tests.py): `value is name(args)`.
#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "lib/jinja/builtins.hpp"
#include "lib/jinja/evaluator.hpp"
#include "lib/jinja/python_ops.hpp"
#include "lib/jinja/text.hpp"

namespace slm::jinja::detail {
namespace {

const Value& only_argument(const CallArgs& args, std::string_view test) {
  if (args.positional.size() != 1 || !args.keywords.empty())
    raise_type_error(fmt::format("test '{}' takes exactly one argument", test));
  return args.positional[0];
}

bool remainder_is(const Value& value, const Value& divisor, std::int64_t expected) {
  return python_equals(python_binary(Operator::modulo, value, divisor, 0), Value(expected));
}

// str.islower() / str.isupper(): some cased character, and none of the other case.
bool has_only_case(const std::string& text, bool want_upper) {
  bool cased = false;
  for (char32_t c : decode_utf8(text)) {
    if (is_cased_upper(c)) {
      if (!want_upper) return false;
      cased = true;
    } else if (is_cased_lower(c)) {
      if (want_upper) return false;
      cased = true;
    }
  }
  return cased;
}

bool test_defined(Evaluator&, const Value& v, const CallArgs&) { return !v.is_undefined(); }
bool test_undefined(Evaluator&, const Value& v, const CallArgs&) { return v.is_undefined(); }
bool test_none(Evaluator&, const Value& v, const CallArgs&) { return v.is_none(); }
bool test_boolean(Evaluator&, const Value& v, const CallArgs&) { return v.is_boolean(); }
bool test_true(Evaluator&, const Value& v, const CallArgs&) { return v.is_boolean() && v.as_bool(); }
bool test_false(Evaluator&, const Value& v, const CallArgs&) { return v.is_boolean() && !v.as_bool(); }
bool test_integer(Evaluator&, const Value& v, const CallArgs&) { return v.is_integer(); }
bool test_float(Evaluator&, const Value& v, const CallArgs&) { return v.is_floating(); }
bool test_number(Evaluator&, const Value& v, const CallArgs&) { return v.is_number(); }
bool test_string(Evaluator&, const Value& v, const CallArgs&) { return v.is_string(); }
bool test_mapping(Evaluator&, const Value& v, const CallArgs&) { return v.is_dict(); }
// Undefined has __len__, __iter__ and __call__, so it passes these as in jinja2.
bool test_sequence(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_string() || v.is_sequence() || v.is_dict() || v.is_undefined();
}
bool test_iterable(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_string() || v.is_sequence() || v.is_dict() || v.is_undefined();
}
bool test_callable(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_function() || v.is_undefined() || (v.is_object() && v.as_object()->call);
}
bool test_escaped(Evaluator&, const Value&, const CallArgs&) { return false; }
bool test_odd(Evaluator&, const Value& v, const CallArgs&) { return remainder_is(v, Value(2), 1); }
bool test_even(Evaluator&, const Value& v, const CallArgs&) { return remainder_is(v, Value(2), 0); }
bool test_divisibleby(Evaluator&, const Value& v, const CallArgs& args) { return remainder_is(v, only_argument(args, "divisibleby"), 0); }
bool test_lower(Evaluator&, const Value& v, const CallArgs&) { return has_only_case(v.str(), false); }
bool test_upper(Evaluator&, const Value& v, const CallArgs&) { return has_only_case(v.str(), true); }
bool test_in(Evaluator&, const Value& v, const CallArgs& args) { return python_contains(only_argument(args, "in"), v); }
bool test_eq(Evaluator&, const Value& v, const CallArgs& args) { return python_equals(v, only_argument(args, "eq")); }
bool test_ne(Evaluator&, const Value& v, const CallArgs& args) { return !python_equals(v, only_argument(args, "ne")); }
bool test_lt(Evaluator&, const Value& v, const CallArgs& args) { return python_less(v, only_argument(args, "lt"), "<"); }
bool test_gt(Evaluator&, const Value& v, const CallArgs& args) { return python_less(only_argument(args, "gt"), v, ">"); }
bool test_le(Evaluator&, const Value& v, const CallArgs& args) { return !python_less(only_argument(args, "le"), v, "<="); }
bool test_ge(Evaluator&, const Value& v, const CallArgs& args) { return !python_less(v, only_argument(args, "ge"), ">="); }

// `x is sameas y`: Python identity. Scalars compare by kind and value, containers by storage.
bool test_sameas(Evaluator&, const Value& v, const CallArgs& args) {
  const Value& other = only_argument(args, "sameas");
  if (v.kind() != other.kind()) return false;
  if (v.is_sequence()) return &v.items() == &other.items();
  if (v.is_dict()) return &v.as_dict() == &other.as_dict();
  return python_equals(v, other);
}

bool test_filter(Evaluator&, const Value& v, const CallArgs&) { return v.is_string() && find_filter(v.as_string()); }
bool test_test(Evaluator&, const Value& v, const CallArgs&) { return v.is_string() && find_test(v.as_string()); }

const std::unordered_map<std::string_view, TestFunction>& test_table() {
  static const std::unordered_map<std::string_view, TestFunction> table = {
      {"defined", test_defined}, {"undefined", test_undefined}, {"none", test_none}, {"boolean", test_boolean},
      {"true", test_true}, {"false", test_false}, {"integer", test_integer}, {"float", test_float},
      {"number", test_number}, {"string", test_string}, {"mapping", test_mapping}, {"sequence", test_sequence},
      {"iterable", test_iterable}, {"callable", test_callable}, {"escaped", test_escaped}, {"odd", test_odd},
      {"even", test_even}, {"divisibleby", test_divisibleby}, {"lower", test_lower}, {"upper", test_upper},
      {"in", test_in}, {"eq", test_eq}, {"equalto", test_eq}, {"==", test_eq}, {"ne", test_ne}, {"!=", test_ne},
      {"lt", test_lt}, {"lessthan", test_lt}, {"<", test_lt}, {"gt", test_gt}, {"greaterthan", test_gt},
      {">", test_gt}, {"le", test_le}, {"<=", test_le}, {"ge", test_ge}, {">=", test_ge},
      {"sameas", test_sameas}, {"filter", test_filter}, {"test", test_test},
  };
  return table;
}

}  // namespace

TestFunction find_test(std::string_view name) {
  const auto& table = test_table();
  const auto found = table.find(name);
  return found == table.end() ? nullptr : found->second;
}

bool is_jinja_test(std::string_view name) { return find_test(name) != nullptr; }

}  // namespace slm::jinja::detail
