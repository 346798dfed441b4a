// The parsed template: one tagged node struct for expressions and statements. The
// evaluator switches on `kind`; each kind documents which fields it uses.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "slm/jinja.hpp"

namespace slm::jinja::detail {

enum class Operator : std::uint8_t {
  add, subtract, multiply, divide, floor_divide, modulo, power, concat,  // arithmetic, ~
  logical_and, logical_or,                                               // short-circuit
  equal, not_equal, less, less_equal, greater, greater_equal, in, not_in,  // comparisons
  logical_not, negate, plus,                                              // unary
};

enum class NodeKind : std::uint8_t {
  // ---- expressions
  literal,        // constant
  variable,       // name
  list_literal,   // args = items
  tuple_literal,  // args = items
  dict_literal,   // args = key0, value0, key1, value1, ...
  attribute,      // args[0].name
  subscript,      // args[0][args[1]]
  slice,          // args[0][args[1]:args[2]:args[3]], a null arg is omitted
  call,           // args[0](args[1..], keywords)
  filter,         // args[0] | name(args[1..], keywords); args[0] null inside {% filter %} / {% set %}
  test,           // args[0] is name(args[1..], keywords)
  unary,          // op args[0]
  binary,         // args[0] op args[1]
  compare,        // args[0] compare_ops[0] args[1] compare_ops[1] args[2] ... (chained)
  conditional,    // args[0] if args[1] else args[2]; args[2] null = undefined
  // ---- statements
  text,           // constant (string), template data
  output,         // {{ args[0] }}
  if_block,       // if args[0]: branches[0] elif args[1]: branches[1] ... else: else_body
  for_loop,       // for targets in args[0] if args[1] (nullable): body, else: else_body; recursive
  set_value,      // set targets = args[0]; or set name.attribute = args[0] when attribute is set
  set_block,      // set targets (or name.attribute) | args[0] (filter chain, nullable): body
  macro,          // macro name(targets = defaults): body; defaults[i] null = required
  call_block,     // call(targets = defaults) args[0] (a call node): body, passed as `caller`
  filter_block,   // filter args[0] (filter chain with a null innermost operand): body
  with_block,     // with targets[i] = args[i]: body
  block,          // {% block name %}: body (no inheritance: renders in place)
  break_loop,
  continue_loop,
};

struct Node;
using NodePtr = std::unique_ptr<Node>;

struct Keyword {
  std::string name;
  NodePtr value;
};

struct Node {
  NodeKind kind;
  int line = 0;
  Operator op = Operator::add;
  std::string name;
  std::string attribute;
  Value constant;
  std::vector<NodePtr> args;
  std::vector<Keyword> keywords;
  std::vector<Operator> compare_ops;
  std::vector<std::string> targets;
  std::vector<NodePtr> defaults;
  std::vector<NodePtr> body;
  std::vector<std::vector<NodePtr>> branches;  // if_block: one body per condition
  std::vector<NodePtr> else_body;
  bool unpack = false;      // targets were written as a tuple: `for a, b in`, `set a, b =`
  bool recursive = false;   // for ... recursive
  // Macros: whether the body reads these special names (jinja only binds them then).
  bool uses_caller = false;
  bool uses_varargs = false;
  bool uses_kwargs = false;
  int depth = 1;  // expression nesting, bounded by the parser
};

struct TemplateProgram {
  std::vector<NodePtr> body;
  std::vector<std::vector<NodePtr>> branches;  // if_block: one body per condition
};

}  // namespace slm::jinja::detail
