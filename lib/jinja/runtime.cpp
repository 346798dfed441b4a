#include "lib/jinja/runtime.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace slm::jinja::detail {

std::string located_message(int line, std::string_view message) {
  std::string out = fmt::format("jinja: line {}: ", line);
  for (char c : message) {
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else out.push_back(c);
  }
  return out;
}

void raise(std::string_view python_exception, std::string_view message) {
  throw slm::Error(fmt::format("{}: {}", python_exception, message));
}

void raise_type_error(std::string_view message) { raise("TypeError", message); }

void raise_undefined(const Value& undefined) {
  raise("UndefinedError", undefined.as_string().empty() ? std::string_view("undefined value used") : std::string_view(undefined.as_string()));
}

Arguments::Arguments(const CallArgs& args, std::string_view function_name, std::initializer_list<std::string_view> parameters)
    : values_(parameters.size()), given_(parameters.size(), false) {
  if (args.positional.size() > parameters.size())
    raise_type_error(fmt::format("{}() takes at most {} argument(s) ({} given)", function_name, parameters.size(), args.positional.size()));
  for (std::size_t i = 0; i < args.positional.size(); ++i) {
    values_[i] = args.positional[i];
    given_[i] = true;
  }
  for (const auto& [name, value] : args.keywords) {
    const auto position = std::find(parameters.begin(), parameters.end(), name);
    if (position == parameters.end())
      raise_type_error(fmt::format("{}() got an unexpected keyword argument '{}'", function_name, name));
    const auto index = static_cast<std::size_t>(position - parameters.begin());
    if (given_[index]) raise_type_error(fmt::format("{}() got multiple values for argument '{}'", function_name, name));
    values_[index] = value;
    given_[index] = true;
  }
}

void set_attribute(Object& object, std::string_view name, Value value) {
  for (auto& [key, existing] : object.attributes.entries) {
    if (key.as_string() == name) {
      existing = std::move(value);
      return;
    }
  }
  object.attributes.entries.emplace_back(Value(name), std::move(value));
}

Value make_function(std::string name, std::function<Value(Evaluator&, CallArgs&)> call) {
  return Value::function(std::make_shared<Function>(Function{std::move(name), std::move(call)}));
}

}  // namespace slm::jinja::detail
