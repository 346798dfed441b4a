// Global functions: jinja's range, dict, namespace, cycler and joiner, and the two that
// transformers adds, raise_exception and strftime_now.
#include <fmt/format.h>

#include <ctime>

#include "lib/jinja/builtins.hpp"
#include "lib/jinja/evaluator.hpp"
#include "lib/jinja/python_ops.hpp"

namespace slm::jinja::detail {
namespace {

// jinja's sandbox refuses bigger ranges (MAX_RANGE).
constexpr std::int64_t max_range = 100000;

Value global_range(Evaluator&, CallArgs& args) {
  if (!args.keywords.empty()) raise_type_error("range() takes no keyword arguments");
  const auto& p = args.positional;
  if (p.empty() || p.size() > 3) raise_type_error(fmt::format("range expected 1 to 3 arguments, got {}", p.size()));
  for (const Value& v : p)
    if (!v.is_integer() && !v.is_boolean())
      raise_type_error(fmt::format("'{}' object cannot be interpreted as an integer", v.type_name()));
  const std::int64_t start = p.size() == 1 ? 0 : p[0].as_int_like();
  const std::int64_t stop = p.size() == 1 ? p[0].as_int_like() : p[1].as_int_like();
  const std::int64_t step = p.size() == 3 ? p[2].as_int_like() : 1;
  if (step == 0) raise("ValueError", "range() arg 3 must not be zero");
  const double count = step > 0 ? (static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step)
                                : (static_cast<double>(start) - static_cast<double>(stop)) / static_cast<double>(-step);
  if (count > max_range)
    raise("OverflowError", fmt::format("Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).", max_range));
  std::vector<Value> items;
  for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) items.emplace_back(i);
  return Value::list(std::move(items));
}

// dict(mapping?, **kwargs) and namespace(mapping?, **kwargs) collect the same way.
void collect_entries(const CallArgs& args, std::string_view function, const std::function<void(Value, Value)>& add) {
  if (args.positional.size() > 1) raise_type_error(fmt::format("{} expected at most 1 argument, got {}", function, args.positional.size()));
  if (!args.positional.empty()) {
    const Value& source = args.positional[0];
    if (source.is_dict()) {
      for (const auto& [key, value] : source.as_dict().entries) add(key, value);
    } else {
      for (const Value& pair : iterate(source)) {
        if (!pair.is_sequence() || pair.items().size() != 2)
          raise("ValueError", fmt::format("{}: each element must be a key/value pair", function));
        add(pair.items()[0], pair.items()[1]);
      }
    }
  }
  for (const auto& [key, value] : args.keywords) add(Value(key), value);
}

Value global_dict(Evaluator&, CallArgs& args) {
  Value dict = Value::dict();
  collect_entries(args, "dict", [&](Value key, Value value) { dict.set(std::move(key), std::move(value)); });
  return dict;
}

Value global_namespace(Evaluator& evaluator, CallArgs& args) {
  const auto object = evaluator.new_object(Object::Type::namespace_object);
  collect_entries(args, "namespace", [&](Value key, Value value) {
    if (!key.is_string()) raise_type_error("namespace attribute names must be strings");
    set_attribute(*object, key.as_string(), std::move(value));
  });
  return Value::object(object);
}

Value global_cycler(Evaluator& evaluator, CallArgs& args) {
  if (args.positional.empty()) raise_type_error("at least one item has to be provided");
  const auto object = evaluator.new_object(Object::Type::cycler);
  const std::weak_ptr<Object> weak = object;
  const auto items = std::make_shared<std::vector<Value>>(args.positional);
  const auto position = std::make_shared<std::size_t>(0);
  set_attribute(*object, "current", items->front());
  set_attribute(*object, "next", make_function("next", [weak, items, position](Evaluator&, CallArgs&) -> Value {
    const Value result = (*items)[*position];
    *position = (*position + 1) % items->size();
    if (const auto owner = weak.lock()) set_attribute(*owner, "current", (*items)[*position]);
    return result;
  }));
  set_attribute(*object, "reset", make_function("reset", [weak, items, position](Evaluator&, CallArgs&) -> Value {
    *position = 0;
    if (const auto owner = weak.lock()) set_attribute(*owner, "current", items->front());
    return Value::none();
  }));
  return Value::object(object);
}

Value global_joiner(Evaluator&, CallArgs& args) {
  const Arguments a(args, "joiner", {"sep"});
  const std::string separator = a.given(0) ? a[0].str() : ", ";
  auto used = std::make_shared<bool>(false);
  return make_function("joiner", [separator, used](Evaluator&, CallArgs&) -> Value {
    if (!*used) {
      *used = true;
      return Value("");
    }
    return Value(separator);
  });
}

Value global_raise_exception(Evaluator&, CallArgs& args) {
  const Arguments a(args, "raise_exception", {"message"});
  throw TemplateException(a[0].str());
}

Value global_strftime_now(Evaluator& evaluator, CallArgs& args) {
  const Arguments a(args, "strftime_now", {"format"});
  if (!a[0].is_string()) raise_type_error("strftime_now() argument must be str");
  std::tm time = evaluator.now();
  std::tm normalized = time;  // fills in the weekday and day of the year
  const std::time_t seconds = timegm(&normalized);
  gmtime_r(&seconds, &normalized);
  time.tm_wday = normalized.tm_wday;
  time.tm_yday = normalized.tm_yday;
  const std::string& format = a[0].as_string();
  if (format.empty()) return Value("");
  // strftime returns 0 both for "too small" and for an empty result; a marker tells them apart.
  const std::string marked = format + "\x01";
  for (std::size_t size = 256; size <= (1u << 20); size *= 4) {
    std::string buffer(size, '\0');
    const std::size_t written = std::strftime(buffer.data(), buffer.size(), marked.c_str(), &time);
    if (written > 0) {
      buffer.resize(written - 1);
      return Value(std::move(buffer));
    }
  }
  raise("ValueError", "strftime_now: result too long");
}

}  // namespace

void add_globals(DictData& globals) {
  const std::pair<const char*, Value (*)(Evaluator&, CallArgs&)> functions[] = {
      {"range", global_range}, {"dict", global_dict}, {"namespace", global_namespace},
      {"cycler", global_cycler}, {"joiner", global_joiner}, {"raise_exception", global_raise_exception},
      {"strftime_now", global_strftime_now},
  };
  for (const auto& [name, function] : functions) globals.entries.emplace_back(Value(name), make_function(name, function));
}

}  // namespace slm::jinja::detail
