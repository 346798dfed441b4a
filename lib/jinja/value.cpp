// slm::jinja::Value: construction, accessors, and Python's bool(), str() and repr().
#include <fmt/format.h>

#include <algorithm>

#include "lib/jinja/python_ops.hpp"
#include "lib/jinja/runtime.hpp"
#include "lib/jinja/text.hpp"
#include "slm/jinja.hpp"

namespace slm::jinja {
namespace {

const std::string& empty_string() {
  static const std::string empty;
  return empty;
}

std::uint32_t depth_of_items(const std::vector<Value>& items) {
  std::uint32_t depth = 0;
  for (const Value& item : items) depth = std::max(depth, item.depth());
  return depth + 1;
}

void check_depth(std::uint32_t depth) {
  if (depth > max_value_depth)
    throw slm::Error(fmt::format("jinja: value nested deeper than {} levels", max_value_depth));
}

}  // namespace

Value::Value(std::string s) : kind_(Kind::string), storage_(std::make_shared<std::string>(std::move(s))) {}

Value Value::undefined(std::string hint) {
  Value v;
  if (!hint.empty()) v.storage_ = std::make_shared<std::string>(std::move(hint));
  return v;
}

Value Value::list(std::vector<Value> items) {
  auto data = std::make_shared<ListData>();
  data->depth = depth_of_items(items);
  check_depth(data->depth);
  data->items = std::move(items);
  Value v;
  v.kind_ = Kind::list;
  v.storage_ = std::move(data);
  return v;
}

Value Value::tuple(std::vector<Value> items) {
  Value v = list(std::move(items));
  v.kind_ = Kind::tuple;
  return v;
}

Value Value::dict(std::vector<std::pair<Value, Value>> entries) {
  Value v;
  v.kind_ = Kind::dict;
  v.storage_ = std::make_shared<DictData>();
  for (auto& [key, value] : entries) v.set(std::move(key), std::move(value));
  return v;
}

Value Value::function(std::shared_ptr<detail::Function> function) {
  Value v;
  v.kind_ = Kind::function;
  v.storage_ = std::move(function);
  return v;
}

Value Value::object(std::shared_ptr<detail::Object> object) {
  Value v;
  v.kind_ = Kind::object;
  v.storage_ = std::move(object);
  return v;
}

double Value::as_number() const {
  switch (kind_) {
    case Kind::boolean: return scalar_.boolean ? 1.0 : 0.0;
    case Kind::integer: return static_cast<double>(scalar_.integer);
    case Kind::floating: return scalar_.floating;
    default: return 0.0;
  }
}

const std::string& Value::as_string() const {
  const auto* text = std::get_if<std::shared_ptr<std::string>>(&storage_);
  return text ? **text : empty_string();
}

const std::vector<Value>& Value::items() const {
  static const std::vector<Value> no_items;
  const auto* data = std::get_if<std::shared_ptr<ListData>>(&storage_);
  return data ? (*data)->items : no_items;
}

const DictData& Value::as_dict() const {
  static const DictData no_entries;
  const auto* data = std::get_if<std::shared_ptr<DictData>>(&storage_);
  return data ? **data : no_entries;
}

const std::shared_ptr<detail::Function>& Value::as_function() const {
  static const std::shared_ptr<detail::Function> none;
  const auto* function = std::get_if<std::shared_ptr<detail::Function>>(&storage_);
  return function ? *function : none;
}

const std::shared_ptr<detail::Object>& Value::as_object() const {
  static const std::shared_ptr<detail::Object> none;
  const auto* object = std::get_if<std::shared_ptr<detail::Object>>(&storage_);
  return object ? *object : none;
}

void Value::push_back(Value item) {
  if (kind_ != Kind::list && kind_ != Kind::tuple) throw slm::Error("jinja: push_back on a value that is not a list");
  auto* data = std::get<std::shared_ptr<ListData>>(storage_).get();
  data->depth = std::max(data->depth, item.depth() + 1);
  check_depth(data->depth);
  data->items.push_back(std::move(item));
}

void Value::set(Value key, Value value) {
  if (kind_ != Kind::dict) throw slm::Error("jinja: set on a value that is not a dict");
  auto* data = std::get<std::shared_ptr<DictData>>(storage_).get();
  data->depth = std::max({data->depth, key.depth() + 1, value.depth() + 1});
  check_depth(data->depth);
  for (auto& entry : data->entries) {
    if (detail::python_equals(entry.first, key)) {
      entry.second = std::move(value);
      return;
    }
  }
  data->entries.emplace_back(std::move(key), std::move(value));
}

const Value* Value::find(std::string_view key) const { return kind_ == Kind::dict ? as_dict().find(key) : nullptr; }

std::uint32_t Value::depth() const {
  if (const auto* list = std::get_if<std::shared_ptr<ListData>>(&storage_)) return (*list)->depth;
  if (const auto* dict = std::get_if<std::shared_ptr<DictData>>(&storage_)) return (*dict)->depth;
  return 0;
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::undefined:
    case Kind::none: return false;
    case Kind::boolean: return scalar_.boolean;
    case Kind::integer: return scalar_.integer != 0;
    case Kind::floating: return scalar_.floating != 0.0;
    case Kind::string: return !as_string().empty();
    case Kind::list:
    case Kind::tuple: return !items().empty();
    case Kind::dict: return !as_dict().entries.empty();
    case Kind::function:
    case Kind::object: return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::undefined: return "Undefined";
    case Kind::none: return "NoneType";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::list: return "list";
    case Kind::tuple: return "tuple";
    case Kind::dict: return "dict";
    case Kind::function: return "function";
    case Kind::object:
      switch (as_object()->type) {
        case detail::Object::Type::namespace_object: return "Namespace";
        case detail::Object::Type::loop: return "LoopContext";
        case detail::Object::Type::cycler: return "Cycler";
      }
  }
  return "object";
}

namespace {

// Objects whose repr is being written; one met again prints as "..." (Python's reprlib
// guard), so self-referencing namespaces neither recurse forever nor blow up.
using ReprStack = std::vector<const detail::Object*>;

void append_repr(std::string& out, const Value& value, std::uint32_t depth, ReprStack& in_progress);

void append_dict_repr(std::string& out, const DictData& dict, std::uint32_t depth, ReprStack& in_progress) {
  out.push_back('{');
  bool first = true;
  for (const auto& [key, item] : dict.entries) {
    if (!first) out += ", ";
    first = false;
    append_repr(out, key, depth + 1, in_progress);
    out += ": ";
    append_repr(out, item, depth + 1, in_progress);
  }
  out.push_back('}');
}

// Namespaces can reference themselves, so repr stops at a depth instead of recursing forever.
void append_repr(std::string& out, const Value& value, std::uint32_t depth, ReprStack& in_progress) {
  if (depth > max_value_depth) {
    out += "...";
    return;
  }
  detail::charge_traversal(detail::traversal_cost_per_value + value.as_string().size());
  switch (value.kind()) {
    case Value::Kind::string: out += detail::python_string_repr(value.as_string()); return;
    case Value::Kind::undefined: out += "Undefined"; return;
    case Value::Kind::list:
    case Value::Kind::tuple: {
      const bool is_tuple = value.is_tuple();
      out.push_back(is_tuple ? '(' : '[');
      const auto& items = value.items();
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ", ";
        append_repr(out, items[i], depth + 1, in_progress);
      }
      if (is_tuple && items.size() == 1) out.push_back(',');
      out.push_back(is_tuple ? ')' : ']');
      return;
    }
    case Value::Kind::dict: append_dict_repr(out, value.as_dict(), depth, in_progress); return;
    case Value::Kind::function: out += "<function " + value.as_function()->name + ">"; return;
    case Value::Kind::object:
      if (value.as_object()->type == detail::Object::Type::namespace_object) {
        const detail::Object* object = value.as_object().get();
        if (std::find(in_progress.begin(), in_progress.end(), object) != in_progress.end()) {
          out += "...";
          return;
        }
        in_progress.push_back(object);
        out += "<Namespace ";
        append_dict_repr(out, object->attributes, depth, in_progress);
        out.push_back('>');
        in_progress.pop_back();
      } else {
        out += fmt::format("<{}>", value.type_name());
      }
      return;
    default: out += value.str(); return;
  }
}

}  // namespace

std::string Value::str() const {
  switch (kind_) {
    case Kind::undefined: return {};
    case Kind::none: return "None";
    case Kind::boolean: return scalar_.boolean ? "True" : "False";
    case Kind::integer: return std::to_string(scalar_.integer);
    case Kind::floating: return detail::python_float_repr(scalar_.floating);
    case Kind::string: return as_string();
    default: return repr();
  }
}

std::string Value::repr() const {
  std::string out;
  ReprStack in_progress;
  append_repr(out, *this, 0, in_progress);
  return out;
}

const Value* DictData::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.as_string()));
  for (const auto& entry : entries)
    if (detail::python_equals(entry.first, key)) return &entry.second;
  return nullptr;
}

const Value* DictData::find(std::string_view key) const {
  for (const auto& entry : entries)
    if (entry.first.is_string() && entry.first.as_string() == key) return &entry.second;
  return nullptr;
}

}  // namespace slm::jinja
