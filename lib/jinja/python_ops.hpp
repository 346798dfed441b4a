// Python semantics of jinja's operators and lookups on Values.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "lib/jinja/ast.hpp"
#include "lib/jinja/runtime.hpp"
#include "slm/jinja.hpp"

namespace slm::jinja::detail {

// Lists built by operators and filters stay below this many items (2M Values = 64 MiB).
inline constexpr std::size_t max_list_items = std::size_t{1} << 21;

bool python_equals(const Value& a, const Value& b);
// a < b for numbers, strings, lists and tuples; TypeError otherwise. `symbol` names the
// operator in the error ("'<' not supported between instances of 'int' and 'str'").
bool python_less(const Value& a, const Value& b, std::string_view symbol = "<");
// `item in container`
bool python_contains(const Value& container, const Value& item);
// Arithmetic and ~. `max_size` bounds what `*` may build (string bytes, list items).
Value python_binary(Operator op, const Value& a, const Value& b, std::size_t max_size);
Value python_unary(Operator op, const Value& operand);

// a.b: the Python attribute (a method) first, then the key.
Value get_attribute(const Value& object, const std::string& name);
// a[key]: the key first, then the attribute; a missing one is undefined.
Value get_item(const Value& object, const Value& key);
// a[start:stop:step]; undefined or none bounds are omitted.
Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step);

// The items a for loop visits: list items, dict keys, string characters; undefined is empty.
std::vector<Value> iterate(const Value& value);
// len(): string length in code points.
std::size_t python_length(const Value& value);

// "%s" % args: printf-style formatting with Python's conversions.
std::string python_percent_format(std::string_view format, const Value& args);
// "{} {name:>5}".format(...): str.format with auto/indexed/named fields, !r/!s and format specs.
std::string python_str_format(std::string_view format, const CallArgs& args);

}  // namespace slm::jinja::detail
