// Jinja's builtin filters, tests, globals, and the Python methods of str, list and dict.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "lib/jinja/runtime.hpp"

namespace slm::jinja::detail {

using FilterFunction = Value (*)(Evaluator&, const Value& input, const CallArgs& args);
using TestFunction = bool (*)(Evaluator&, const Value& input, const CallArgs& args);

// nullptr when slm does not implement the filter / test.
FilterFunction find_filter(std::string_view name);
TestFunction find_test(std::string_view name);
// Names jinja2 itself knows (implemented here or not); a template naming anything else
// fails to compile in jinja2 too.
bool is_jinja_filter(std::string_view name);
bool is_jinja_test(std::string_view name);

// `self.name` when it is a Python method of a str, list, tuple or dict: a bound method
// (calling a mutating one raises SecurityError, as jinja's sandbox does). nullopt otherwise.
std::optional<Value> find_method(const Value& self, std::string_view name);

// range, dict, namespace, cycler, joiner, raise_exception, strftime_now.
void add_globals(DictData& globals);

}  // namespace slm::jinja::detail
