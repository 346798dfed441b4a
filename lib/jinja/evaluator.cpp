#include "lib/jinja/evaluator.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "lib/jinja/builtins.hpp"
#include "lib/jinja/python_ops.hpp"

namespace slm::jinja::detail {
namespace {

// Nested eval/exec frames of one render (expressions, blocks and macro calls together).
// About 450 bytes of native stack each: the deepest render stays under 512 KiB.
constexpr std::uint32_t max_recursion = 1000;

// The evaluator whose render is running on this thread (charge_traversal's meter).
thread_local Evaluator* active_evaluator = nullptr;

// An error that already carries its template line.
class LocatedError : public slm::Error {
 public:
  using slm::Error::Error;
};

}  // namespace

const Value* Scope::find(std::string_view name) const {
  for (const Scope* scope = this; scope; scope = scope->parent.get())
    for (const auto& [variable, value] : scope->variables)
      if (variable == name) return &value;
  return nullptr;
}

void Scope::set(const std::string& name, Value value) {
  for (auto& [variable, existing] : variables) {
    if (variable == name) {
      existing = std::move(value);
      return;
    }
  }
  variables.emplace_back(name, std::move(value));
}

Evaluator::RecursionGuard::RecursionGuard(Evaluator& e) : evaluator(e) {
  if (++evaluator.recursion_ > max_recursion) {
    --evaluator.recursion_;
    raise("RecursionError", fmt::format("template evaluation nested deeper than {} levels", max_recursion));
  }
}

Evaluator::Evaluator(const RenderOptions& options) : options_(options) {}

Evaluator::~Evaluator() {
  for (auto& object : objects_) {
    object->attributes.entries.clear();
    object->call.reset();
  }
  for (auto& scope : captured_scopes_) scope->variables.clear();
}

void charge_traversal(std::uint64_t units) {
  if (active_evaluator) active_evaluator->charge(units);
}

std::string Evaluator::render(const TemplateProgram& program, const Value& context) {
  struct ActiveEvaluator {
    Evaluator* saved;
    ~ActiveEvaluator() { active_evaluator = saved; }
  } active{std::exchange(active_evaluator, this)};
  auto globals = std::make_shared<Scope>();
  DictData builtin_globals;
  add_globals(builtin_globals);
  for (const auto& [name, value] : builtin_globals.entries) globals->set(name.as_string(), value);
  for (const auto& [name, value] : context.as_dict().entries)
    if (name.is_string()) globals->set(name.as_string(), value);
  captured_scopes_.push_back(globals);
  const ScopePtr template_scope = child_scope(globals);
  captured_scopes_.push_back(template_scope);
  return capture(program.body, template_scope);
}

std::tm Evaluator::now() const {
  if (options_.fixed_now) return *options_.fixed_now;
  const std::time_t seconds = std::time(nullptr);
  std::tm local{};
  localtime_r(&seconds, &local);
  return local;
}

std::shared_ptr<Object> Evaluator::new_object(Object::Type type) {
  auto object = std::make_shared<Object>();
  object->type = type;
  objects_.push_back(object);
  return object;
}

void Evaluator::charge(std::uint64_t units) {
  work_ += units;
  if (work_ > options_.limits.max_work)
    raise("ResourceError", fmt::format("template exceeded its work limit of {} units (bytes and values produced or walked)",
                                       options_.limits.max_work));
}

void Evaluator::account(const Value& produced) {
  if (produced.is_string()) {
    const std::size_t size = produced.as_string().size();
    if (size > options_.limits.max_output_bytes)
      raise("ResourceError", fmt::format("a string of {} bytes exceeds the limit of {} bytes", size, options_.limits.max_output_bytes));
    charge(size);
  } else if (produced.is_sequence()) {
    charge(produced.items().size());
  } else if (produced.is_dict()) {
    charge(produced.as_dict().entries.size());
  }
}

void Evaluator::emit(std::string_view text) {
  if (out_->size() + text.size() > options_.limits.max_output_bytes)
    raise("ResourceError", fmt::format("output exceeds the limit of {} bytes", options_.limits.max_output_bytes));
  charge(text.size());
  out_->append(text);
}

void Evaluator::count_iteration() {
  if (++iterations_ > options_.limits.max_loop_iterations)
    raise("ResourceError", fmt::format("more than {} loop iterations and macro calls", options_.limits.max_loop_iterations));
  charge(1);
}

ScopePtr Evaluator::child_scope(const ScopePtr& parent) const {
  auto scope = std::make_shared<Scope>();
  scope->parent = parent;
  return scope;
}

std::string Evaluator::capture(const std::vector<NodePtr>& body, const ScopePtr& scope) {
  return capture_output([&] { exec_body(body, scope); });
}

// ------------------------------------------------------------------ expressions

Value Evaluator::lookup(const std::string& name, const ScopePtr& scope) const {
  if (const Value* value = scope->find(name)) return *value;
  return Value::undefined(fmt::format("'{}' is undefined", name));
}

Value Evaluator::eval(const Node& node, const ScopePtr& scope) {
  RecursionGuard guard(*this);
  const auto& args = node.args;
  switch (node.kind) {
    case NodeKind::literal: return node.constant;
    case NodeKind::variable: return lookup(node.name, scope);
    case NodeKind::list_literal:
    case NodeKind::tuple_literal: {
      std::vector<Value> items;
      items.reserve(args.size());
      for (const auto& item : args) items.push_back(eval(*item, scope));
      return node.kind == NodeKind::list_literal ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case NodeKind::dict_literal: {
      Value dict = Value::dict();
      for (std::size_t i = 0; i + 1 < args.size(); i += 2) {
        Value key = eval(*args[i], scope);
        if (key.is_list() || key.is_dict()) raise_type_error(fmt::format("unhashable type: '{}'", key.type_name()));
        dict.set(std::move(key), eval(*args[i + 1], scope));
      }
      return dict;
    }
    case NodeKind::attribute: return get_attribute(eval(*args[0], scope), node.name);
    case NodeKind::subscript: return get_item(eval(*args[0], scope), eval(*args[1], scope));
    case NodeKind::slice: {
      auto bound = [&](const NodePtr& expr) { return expr ? eval(*expr, scope) : Value::none(); };
      Value result = get_slice(eval(*args[0], scope), bound(args[1]), bound(args[2]), bound(args[3]));
      account(result);
      return result;
    }
    case NodeKind::call: return eval_call(node, scope, nullptr);
    case NodeKind::filter: return eval_filter(node, scope, nullptr);
    case NodeKind::test: {
      const Value operand = eval(*args[0], scope);
      return apply_test(node.name, operand, eval_arguments(node, 1, scope));
    }
    case NodeKind::unary: return python_unary(node.op, eval(*args[0], scope));
    case NodeKind::binary: {
      Value left = eval(*args[0], scope);
      if (node.op == Operator::logical_and) return left.truthy() ? eval(*args[1], scope) : left;
      if (node.op == Operator::logical_or) return left.truthy() ? left : eval(*args[1], scope);
      Value result = python_binary(node.op, left, eval(*args[1], scope), options_.limits.max_output_bytes);
      account(result);
      return result;
    }
    case NodeKind::compare: return eval_compare(node, scope);
    case NodeKind::conditional:
      if (eval(*args[1], scope).truthy()) return eval(*args[0], scope);
      return args[2] ? eval(*args[2], scope) : Value::undefined("the inline if expression had no else branch");
    default: raise("RuntimeError", "statement used as an expression");
  }
}

Value Evaluator::eval_compare(const Node& node, const ScopePtr& scope) {
  Value left = eval(*node.args[0], scope);
  for (std::size_t i = 0; i < node.compare_ops.size(); ++i) {
    Value right = eval(*node.args[i + 1], scope);
    bool holds = false;
    switch (node.compare_ops[i]) {
      case Operator::equal: holds = python_equals(left, right); break;
      case Operator::not_equal: holds = !python_equals(left, right); break;
      case Operator::less: holds = python_less(left, right, "<"); break;
      case Operator::less_equal: holds = !python_less(right, left, "<="); break;
      case Operator::greater: holds = python_less(right, left, ">"); break;
      case Operator::greater_equal: holds = !python_less(left, right, ">="); break;
      case Operator::in: holds = python_contains(right, left); break;
      case Operator::not_in: holds = !python_contains(right, left); break;
      default: break;
    }
    if (!holds) return false;
    left = std::move(right);
  }
  return true;
}

CallArgs Evaluator::eval_arguments(const Node& node, std::size_t first, const ScopePtr& scope) {
  CallArgs call_args;
  for (std::size_t i = first; i < node.args.size(); ++i) call_args.positional.push_back(eval(*node.args[i], scope));
  for (const auto& keyword : node.keywords) call_args.keywords.emplace_back(keyword.name, eval(*keyword.value, scope));
  return call_args;
}

Value Evaluator::eval_call(const Node& node, const ScopePtr& scope, const Value* caller) {
  const Value callee = eval(*node.args[0], scope);
  CallArgs call_args = eval_arguments(node, 1, scope);
  if (caller) call_args.keywords.emplace_back("caller", *caller);
  Value result = call(callee, std::move(call_args));
  account(result);
  return result;
}

Value Evaluator::call(const Value& callee, CallArgs args) {
  if (callee.is_function()) return callee.as_function()->call(*this, args);
  if (callee.is_object() && callee.as_object()->call) return callee.as_object()->call->call(*this, args);
  if (callee.is_undefined()) raise_undefined(callee);
  raise_type_error(fmt::format("'{}' object is not callable", callee.type_name()));
}

Value Evaluator::eval_filter(const Node& node, const ScopePtr& scope, const Value* block_input) {
  Value input;
  if (!node.args[0]) input = *block_input;
  else if (block_input && node.args[0]->kind == NodeKind::filter) input = eval_filter(*node.args[0], scope, block_input);
  else input = eval(*node.args[0], scope);
  return apply_filter(node.name, input, eval_arguments(node, 1, scope));
}

Value Evaluator::apply_filter(const std::string& name, const Value& input, const CallArgs& args) {
  const FilterFunction filter = find_filter(name);
  if (!filter) raise("TemplateRuntimeError", fmt::format("unsupported construct: filter '{}' is not implemented", name));
  Value result = filter(*this, input, args);
  account(result);
  return result;
}

bool Evaluator::apply_test(const std::string& name, const Value& input, const CallArgs& args) {
  const TestFunction test = find_test(name);
  if (!test) raise("TemplateRuntimeError", fmt::format("unsupported construct: test '{}' is not implemented", name));
  return test(*this, input, args);
}

// ------------------------------------------------------------------ statements

Flow Evaluator::exec_body(const std::vector<NodePtr>& body, const ScopePtr& scope) {
  for (const auto& statement : body) {
    const Flow flow = exec(*statement, scope);
    if (flow != Flow::normal) return flow;
  }
  return Flow::normal;
}

// Runtime errors get the line of the innermost statement; raise_exception's message stays exact.
Flow Evaluator::exec(const Node& node, const ScopePtr& scope) {
  try {
    return exec_statement(node, scope);
  } catch (const LocatedError&) {
    throw;
  } catch (const TemplateException&) {
    throw;
  } catch (const slm::Error& error) {
    std::string_view message = error.what();
    if (message.starts_with("jinja: ")) message.remove_prefix(7);
    throw LocatedError(located_message(node.line, message));
  }
}

Flow Evaluator::exec_statement(const Node& node, const ScopePtr& scope) {
  RecursionGuard guard(*this);
  switch (node.kind) {
    case NodeKind::text: emit(node.constant.as_string()); break;
    case NodeKind::output: emit(eval(*node.args[0], scope).str()); break;
    case NodeKind::if_block:
      for (std::size_t i = 0; i < node.args.size(); ++i)
        if (eval(*node.args[i], scope).truthy()) return exec_body(node.branches[i], scope);
      return exec_body(node.else_body, scope);
    case NodeKind::for_loop: render_loop(node, scope, eval(*node.args[0], scope), 0); break;
    case NodeKind::set_value: assign(node, scope, eval(*node.args[0], scope)); break;
    case NodeKind::set_block: {
      const Value content(capture(node.body, child_scope(scope)));
      assign(node, scope, node.args[0] ? eval_filter(*node.args[0], scope, &content) : content);
      break;
    }
    case NodeKind::macro: scope->set(node.name, make_macro(node, scope)); break;
    case NodeKind::call_block: exec_call_block(node, scope); break;
    case NodeKind::filter_block: {
      const Value content(capture(node.body, child_scope(scope)));
      emit(eval_filter(*node.args[0], scope, &content).str());
      break;
    }
    case NodeKind::with_block: {
      const ScopePtr inner = child_scope(scope);
      for (std::size_t i = 0; i < node.targets.size(); ++i) inner->set(node.targets[i], eval(*node.args[i], scope));
      return exec_body(node.body, inner);
    }
    case NodeKind::block: return exec_body(node.body, child_scope(scope));
    case NodeKind::break_loop: return Flow::break_loop;
    case NodeKind::continue_loop: return Flow::continue_loop;
    default: raise("RuntimeError", "expression used as a statement");
  }
  return Flow::normal;
}

void Evaluator::assign_targets(const Node& node, Scope& scope, const Value& value) {
  if (!node.unpack) return scope.set(node.targets.front(), value);
  const std::vector<Value> parts = iterate(value);
  const std::size_t expected = node.targets.size();
  if (parts.size() > expected) raise("ValueError", fmt::format("too many values to unpack (expected {})", expected));
  if (parts.size() < expected)
    raise("ValueError", fmt::format("not enough values to unpack (expected {}, got {})", expected, parts.size()));
  for (std::size_t i = 0; i < expected; ++i) scope.set(node.targets[i], parts[i]);
}

void Evaluator::assign(const Node& node, const ScopePtr& scope, Value value) {
  if (node.attribute.empty()) return assign_targets(node, *scope, value);
  const Value target = lookup(node.name, scope);
  if (!target.is_object() || target.as_object()->type != Object::Type::namespace_object)
    raise("TemplateRuntimeError", "cannot assign attribute on non-namespace object");
  set_attribute(*target.as_object(), node.attribute, std::move(value));
}

void Evaluator::render_loop(const Node& loop, const ScopePtr& scope, const Value& iterable, int depth) {
  std::vector<Value> items = iterate(iterable);
  if (const auto& condition = loop.args[1]) {  // {% for x in xs if condition %}
    std::vector<Value> kept;
    for (Value& item : items) {
      count_iteration();
      const ScopePtr probe = child_scope(scope);
      assign_targets(loop, *probe, item);
      if (eval(*condition, probe).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    exec_body(loop.else_body, child_scope(scope));
    return;
  }
  const auto context = new_object(Object::Type::loop);
  const Value context_value = Value::object(context);
  const std::weak_ptr<Object> weak_context = context;
  const auto length = static_cast<std::int64_t>(items.size());
  set_attribute(*context, "length", length);
  set_attribute(*context, "depth", depth + 1);
  set_attribute(*context, "depth0", depth);
  set_attribute(*context, "cycle", make_function("cycle", [weak_context](Evaluator&, CallArgs& args) -> Value {
    if (args.positional.empty()) raise_type_error("no items for cycling given");
    const auto owner = weak_context.lock();
    const Value* index0 = owner ? owner->attributes.find(std::string_view("index0")) : nullptr;
    const auto index = static_cast<std::size_t>(index0 ? index0->as_int() : 0);
    return args.positional[index % args.positional.size()];
  }));
  auto last_seen = std::make_shared<std::optional<Value>>();
  set_attribute(*context, "changed", make_function("changed", [last_seen](Evaluator&, CallArgs& args) -> Value {
    Value current = Value::tuple(args.positional);
    if (*last_seen && python_equals(**last_seen, current)) return false;
    *last_seen = std::move(current);
    return true;
  }));
  if (loop.recursive) {
    captured_scopes_.push_back(scope);
    const Node* loop_node = &loop;
    context->call = std::make_shared<Function>(Function{"loop", [loop_node, scope, depth](Evaluator& evaluator, CallArgs& args) -> Value {
      if (args.positional.size() != 1) raise_type_error("loop() takes exactly one argument");
      return Value(evaluator.capture_output([&] { evaluator.render_loop(*loop_node, scope, args.positional[0], depth + 1); }));
    }});
  }
  for (std::int64_t i = 0; i < length; ++i) {
    count_iteration();
    const ScopePtr iteration = child_scope(scope);
    assign_targets(loop, *iteration, items[static_cast<std::size_t>(i)]);
    set_attribute(*context, "index", i + 1);
    set_attribute(*context, "index0", i);
    set_attribute(*context, "revindex", length - i);
    set_attribute(*context, "revindex0", length - i - 1);
    set_attribute(*context, "first", i == 0);
    set_attribute(*context, "last", i == length - 1);
    set_attribute(*context, "previtem", i > 0 ? items[static_cast<std::size_t>(i - 1)] : Value::undefined("there is no previous item"));
    set_attribute(*context, "nextitem", i + 1 < length ? items[static_cast<std::size_t>(i + 1)] : Value::undefined("there is no next item"));
    iteration->set("loop", context_value);
    if (exec_body(loop.body, iteration) == Flow::break_loop) break;
  }
}

// ------------------------------------------------------------------ macros

Value Evaluator::make_macro(const Node& definition, const ScopePtr& closure) {
  captured_scopes_.push_back(closure);
  const Node* node = &definition;
  return make_function(definition.name, [node, closure](Evaluator& evaluator, CallArgs& args) {
    return evaluator.invoke_macro(*node, closure, args);
  });
}

Value Evaluator::invoke_macro(const Node& definition, const ScopePtr& closure, CallArgs& args) {
  const std::string name = definition.kind == NodeKind::macro ? definition.name : "caller";
  if (call_depth_ >= options_.limits.max_call_depth)
    raise("RecursionError", fmt::format("macro calls nested deeper than {} (in macro '{}')", options_.limits.max_call_depth, name));
  count_iteration();
  struct CallDepth {
    std::uint32_t& depth;
    ~CallDepth() { --depth; }
  } call_depth{++call_depth_};

  const auto& parameters = definition.targets;
  const ScopePtr frame = child_scope(closure);
  std::vector<bool> bound(parameters.size(), false);
  std::vector<Value> extra_positional;
  for (std::size_t i = 0; i < args.positional.size(); ++i) {
    if (i < parameters.size()) {
      frame->set(parameters[i], args.positional[i]);
      bound[i] = true;
    } else {
      extra_positional.push_back(args.positional[i]);
    }
  }
  if (!extra_positional.empty() && !definition.uses_varargs)
    raise_type_error(fmt::format("macro '{}' takes not more than {} argument(s)", name, parameters.size()));
  Value extra_keywords = Value::dict();
  Value caller = Value::undefined("No caller defined");
  for (auto& [keyword, value] : args.keywords) {
    const auto position = std::find(parameters.begin(), parameters.end(), keyword);
    if (position != parameters.end()) {
      const auto index = static_cast<std::size_t>(position - parameters.begin());
      if (bound[index]) raise_type_error(fmt::format("macro '{}' got multiple values for argument '{}'", name, keyword));
      frame->set(keyword, value);
      bound[index] = true;
    } else if (keyword == "caller" && definition.uses_caller) {
      caller = value;
    } else if (definition.uses_kwargs) {
      extra_keywords.set(keyword, value);
    } else {
      raise_type_error(fmt::format("macro '{}' takes no keyword argument '{}'", name, keyword));
    }
  }
  // Defaults are evaluated at call time and may read the parameters before them.
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    if (bound[i]) continue;
    const auto& fallback = definition.defaults[i];
    frame->set(parameters[i], fallback ? eval(*fallback, frame)
                                       : Value::undefined(fmt::format("parameter '{}' was not provided", parameters[i])));
  }
  if (definition.uses_varargs) frame->set("varargs", Value::tuple(std::move(extra_positional)));
  if (definition.uses_kwargs) frame->set("kwargs", std::move(extra_keywords));
  if (definition.uses_caller) frame->set("caller", std::move(caller));
  return Value(capture(definition.body, frame));
}

void Evaluator::exec_call_block(const Node& node, const ScopePtr& scope) {
  captured_scopes_.push_back(scope);
  const Node* definition = &node;
  const Value caller = make_function("caller", [definition, scope](Evaluator& evaluator, CallArgs& args) {
    return evaluator.invoke_macro(*definition, scope, args);
  });
  emit(eval_call(*node.args[0], scope, &caller).str());
}

}  // namespace slm::jinja::detail
