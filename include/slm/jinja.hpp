// A Jinja template engine that renders chat templates byte for byte as Hugging Face
// transformers does: Python jinja2 3.1 in an ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks and the loopcontrols extension, lenient Undefined, and
// transformers' json.dumps-style `tojson`.
//
// Values follow Python semantics (str(), repr(), ==, truthiness, int/float arithmetic),
// because the templates were written against Python. Templates are untrusted input:
// parsing and rendering are bounded (nesting depth, loop iterations, call depth, output
// and work size), and exceeding a bound is an slm::Error, never a crash or a hang.
#pragma once

#include <concepts>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "slm/error.hpp"

namespace slm::jinja {

// What raise_exception(message) throws; what() is exactly the template's message.
class TemplateException : public slm::Error {
 public:
  using slm::Error::Error;
};

namespace detail {
struct Function;  // builtins, bound methods, macros (lib/jinja)
struct Object;    // namespace(), loop, cycler (lib/jinja)
struct TemplateProgram;
}  // namespace detail

struct ListData;
struct DictData;

class Value {
 public:
  enum class Kind : std::uint8_t {
    undefined,  // a missing variable or key: prints "", falsy
    none,
    boolean,
    integer,  // int64; Python's big integers beyond that are an error
    floating,
    string,  // UTF-8
    list,
    tuple,  // same storage as list; differs in repr() and ==
    dict,   // insertion-ordered, keys are Values (usually strings)
    function,
    object,
  };

  Value() = default;  // undefined
  Value(std::nullptr_t) : kind_(Kind::none) {}
  Value(bool b) : kind_(Kind::boolean) { scalar_.boolean = b; }
  template <std::integral T>
    requires(!std::same_as<T, bool>)
  Value(T i) : kind_(Kind::integer) {
    scalar_.integer = static_cast<std::int64_t>(i);
  }
  Value(double d) : kind_(Kind::floating) { scalar_.floating = d; }
  Value(std::string s);
  Value(std::string_view s) : Value(std::string(s)) {}
  Value(const char* s) : Value(std::string(s)) {}

  static Value none() { return Value(nullptr); }
  // `hint` is the UndefinedError message used when the value is misused ("'x' is undefined").
  static Value undefined(std::string hint = {});
  static Value list(std::vector<Value> items = {});
  static Value tuple(std::vector<Value> items);
  static Value dict(std::vector<std::pair<Value, Value>> entries = {});
  static Value function(std::shared_ptr<detail::Function> function);
  static Value object(std::shared_ptr<detail::Object> object);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::undefined; }
  bool is_none() const { return kind_ == Kind::none; }
  bool is_boolean() const { return kind_ == Kind::boolean; }
  bool is_integer() const { return kind_ == Kind::integer; }
  bool is_floating() const { return kind_ == Kind::floating; }
  // Python's numbers include bool.
  bool is_number() const { return kind_ == Kind::integer || kind_ == Kind::floating || kind_ == Kind::boolean; }
  bool is_string() const { return kind_ == Kind::string; }
  bool is_list() const { return kind_ == Kind::list; }
  bool is_tuple() const { return kind_ == Kind::tuple; }
  bool is_sequence() const { return kind_ == Kind::list || kind_ == Kind::tuple; }
  bool is_dict() const { return kind_ == Kind::dict; }
  bool is_function() const { return kind_ == Kind::function; }
  bool is_object() const { return kind_ == Kind::object; }

  bool as_bool() const { return scalar_.boolean; }
  std::int64_t as_int() const { return scalar_.integer; }
  double as_double() const { return scalar_.floating; }
  // Integer value of a bool or int (Python treats bool as int).
  std::int64_t as_int_like() const { return kind_ == Kind::boolean ? scalar_.boolean : scalar_.integer; }
  // Numeric value of a bool, int or float.
  double as_number() const;
  const std::string& as_string() const;  // string; for undefined, its hint
  const std::vector<Value>& items() const;  // list or tuple
  const DictData& as_dict() const;
  const std::shared_ptr<detail::Function>& as_function() const;
  const std::shared_ptr<detail::Object>& as_object() const;

  // Building a list or dict in place. Lists and dicts are shared between copies, so
  // only mutate a value before handing it to a template.
  void push_back(Value item);
  void set(Value key, Value value);
  // Key lookup in a dict; nullptr when absent or when this is not a dict.
  const Value* find(std::string_view key) const;

  bool truthy() const;         // Python bool()
  std::string str() const;     // Python str(); undefined prints ""
  std::string repr() const;    // Python repr()
  std::string type_name() const;  // Python type name: "str", "NoneType", "Undefined", ...
  // Nesting depth of lists, tuples and dicts (a scalar is 0), bounded at construction.
  std::uint32_t depth() const;

 private:
  Kind kind_ = Kind::undefined;
  union {
    bool boolean;
    std::int64_t integer;
    double floating;
  } scalar_{};
  // The string (or an undefined value's hint), the list or tuple, the dict, the function, the object.
  std::variant<std::monostate, std::shared_ptr<std::string>, std::shared_ptr<ListData>, std::shared_ptr<DictData>,
               std::shared_ptr<detail::Function>, std::shared_ptr<detail::Object>>
      storage_;
};

struct ListData {
  std::vector<Value> items;
  std::uint32_t depth = 1;
};

struct DictData {
  std::vector<std::pair<Value, Value>> entries;
  std::uint32_t depth = 1;
  const Value* find(const Value& key) const;  // Python key equality (1 == 1.0 == True)
  const Value* find(std::string_view key) const;
};

// Containers deeper than this cannot be built (by JSON or by a template), so that
// destroying, printing or comparing them never exhausts the stack.
inline constexpr std::uint32_t max_value_depth = 512;

// Parses JSON keeping object key order; integers become int64 (floats when too large).
// Throws slm::Error("json: offset N: ...") on malformed input.
Value value_from_json(std::string_view json_text);
// Python json.dumps(value, ensure_ascii=False): separators ", " and ": ", keys in order.
std::string to_json(const Value& value);

struct RenderLimits {
  std::size_t max_output_bytes = 16u << 20;   // the rendered text, and any one string built
  std::uint64_t max_loop_iterations = 1'000'000;  // total over all loops of one render
  std::uint32_t max_call_depth = 100;         // nested macro calls (recursion)
  // Bytes and items produced (strings, lists, output) and values walked by repr, ==, <
  // and tojson; bounds the time of a render.
  std::uint64_t max_work = 1ull << 28;
};

struct RenderOptions {
  // strftime_now() reads this instead of the local clock when set.
  std::optional<std::tm> fixed_now;
  RenderLimits limits;
};

class Template {
 public:
  // Throws slm::Error("jinja: line L: ...") on syntax errors and unsupported constructs.
  static Template parse(std::string_view source);

  // `context` is a dict of variables. Globals: range, dict, namespace, cycler, joiner,
  // raise_exception, strftime_now. Throws slm::Error for runtime errors and
  // TemplateException for raise_exception().
  std::string render(const Value& context, const RenderOptions& options = {}) const;

 private:
  std::shared_ptr<const detail::TemplateProgram> program_;
};

}  // namespace slm::jinja
