// Renders a parsed template: a switch over node kinds, with jinja's scoping (for bodies,
// macros, with/filter/set blocks get their own scope; if does not) and the render bounds.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/jinja/ast.hpp"
#include "lib/jinja/runtime.hpp"

namespace slm::jinja::detail {

struct Scope {
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> variables;

  const Value* find(std::string_view name) const;
  void set(const std::string& name, Value value);
};
using ScopePtr = std::shared_ptr<Scope>;

enum class Flow : std::uint8_t { normal, break_loop, continue_loop };

class Evaluator {
 public:
  explicit Evaluator(const RenderOptions& options);
  ~Evaluator();  // breaks the reference cycles closures and namespaces may have formed
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  std::string render(const TemplateProgram& program, const Value& context);

  // ---- for the builtins
  Value call(const Value& callee, CallArgs args);
  Value apply_filter(const std::string& name, const Value& input, const CallArgs& args);
  bool apply_test(const std::string& name, const Value& input, const CallArgs& args);
  // Counts produced bytes and items against RenderLimits::max_work; bounds string sizes.
  void account(const Value& produced);
  void charge(std::uint64_t units);
  const RenderLimits& limits() const { return options_.limits; }
  std::tm now() const;
  // A namespace, loop or cycler object, released (cycles broken) when the render ends.
  std::shared_ptr<Object> new_object(Object::Type type);

  // Runs a macro (or a call block's caller) with bound arguments; returns its output.
  Value invoke_macro(const Node& definition, const ScopePtr& closure, CallArgs& args);
  // Renders a for loop over `iterable` at recursion `depth` into the current output.
  void render_loop(const Node& loop, const ScopePtr& scope, const Value& iterable, int depth);
  std::string capture(const std::vector<NodePtr>& body, const ScopePtr& scope);
  // What `render()` writes, returned instead of written (set blocks, macros, loop(...)).
  template <typename Render>
  std::string capture_output(Render&& render) {
    std::string buffer;
    struct Restore {
      std::string*& out;
      std::string* saved;
      ~Restore() { out = saved; }
    } restore{out_, std::exchange(out_, &buffer)};
    render();
    return buffer;
  }

 private:
  const RenderOptions& options_;
  std::string* out_ = nullptr;
  std::uint64_t work_ = 0;
  std::uint64_t iterations_ = 0;
  std::uint32_t call_depth_ = 0;
  std::uint32_t recursion_ = 0;
  std::vector<std::shared_ptr<Object>> objects_;
  std::vector<ScopePtr> captured_scopes_;

  struct RecursionGuard {
    Evaluator& evaluator;
    explicit RecursionGuard(Evaluator& e);
    ~RecursionGuard() { --evaluator.recursion_; }
  };

  void emit(std::string_view text);
  void count_iteration();
  ScopePtr child_scope(const ScopePtr& parent) const;
  Value make_macro(const Node& definition, const ScopePtr& closure);

  Value eval(const Node& node, const ScopePtr& scope);
  Value lookup(const std::string& name, const ScopePtr& scope) const;
  Value eval_call(const Node& node, const ScopePtr& scope, const Value* caller);
  CallArgs eval_arguments(const Node& node, std::size_t first, const ScopePtr& scope);
  Value eval_filter(const Node& node, const ScopePtr& scope, const Value* block_input);
  Value eval_compare(const Node& node, const ScopePtr& scope);

  Flow exec_body(const std::vector<NodePtr>& body, const ScopePtr& scope);
  Flow exec(const Node& node, const ScopePtr& scope);
  Flow exec_statement(const Node& node, const ScopePtr& scope);
  void assign_targets(const Node& node, Scope& scope, const Value& value);
  // A set statement's assignment: to its names, or to a namespace attribute.
  void assign(const Node& node, const ScopePtr& scope, Value value);
  void exec_call_block(const Node& node, const ScopePtr& scope);
};

}  // namespace slm::jinja::detail
