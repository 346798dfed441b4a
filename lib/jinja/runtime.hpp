// Runtime pieces shared by the evaluator and the builtins: callables, objects,
// call arguments and the Python-flavoured errors.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slm/jinja.hpp"

namespace slm::jinja::detail {

class Evaluator;

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;
};

struct Function {
  std::string name;
  std::function<Value(Evaluator&, CallArgs&)> call;
};

struct Object {
  enum class Type : std::uint8_t { namespace_object, loop, cycler };
  Type type;
  DictData attributes;              // what `object.name` reads
  std::shared_ptr<Function> call;  // `loop(...)` of a recursive loop; otherwise null
};

// "jinja: line L: message" on one line (newlines inside the message are escaped).
std::string located_message(int line, std::string_view message);

// Errors carry the Python exception name jinja2 would raise, e.g.
// "TypeError: can only concatenate str (not "int") to str". The evaluator adds the line.
[[noreturn]] void raise(std::string_view python_exception, std::string_view message);
[[noreturn]] void raise_type_error(std::string_view message);
// Misusing an undefined value: its hint, or "'x' is undefined".
[[noreturn]] void raise_undefined(const Value& undefined);

// Binds call arguments to a Python-style signature: positional first, then keywords.
class Arguments {
 public:
  Arguments(const CallArgs& args, std::string_view function_name, std::initializer_list<std::string_view> parameters);
  bool given(std::size_t index) const { return given_[index]; }
  const Value& operator[](std::size_t index) const { return values_[index]; }
  // The argument, or `fallback` when it was not passed.
  Value get(std::size_t index, Value fallback) const { return given_[index] ? values_[index] : std::move(fallback); }

 private:
  std::vector<Value> values_;
  std::vector<bool> given_;
};

// Sets `object.name` (loop attributes, namespace assignment).
void set_attribute(Object& object, std::string_view name, Value value);

// Charges work done while walking values (repr, ==, <, tojson) to the render running on
// this thread, if any: lists can hold the same list many times over, and walking such a
// value must hit RenderLimits::max_work instead of running for hours.
void charge_traversal(std::uint64_t units);
// Work units per value written by repr/tojson and per comparison, roughly their cost in
// bytes produced, so that max_work bounds time whatever the mix.
inline constexpr std::uint64_t traversal_cost_per_value = 16;
inline constexpr std::uint64_t traversal_cost_per_comparison = 4;

// A builtin function value.
Value make_function(std::string name, std::function<Value(Evaluator&, CallArgs&)> call);

}  // namespace slm::jinja::detail
