#include "lib/server/structured_output.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "lib/server/api_error.hpp"
#include "slm/error.hpp"

namespace slm::server {

namespace {

constexpr char kSchemaKey = 's', kGbnfKey = 'g';

std::optional<Grammar> constraint_grammar(const OutputConstraint& output, GrammarCache& cache) {
  try {
    switch (output.kind) {
      case OutputConstraint::Kind::None: return std::nullopt;
      case OutputConstraint::Kind::JsonObject: return json_object_grammar();
      case OutputConstraint::Kind::JsonSchema:
        return cache.get(kSchemaKey, output.text, [](const std::string& text) { return grammar_from_json_schema(text); });
      case OutputConstraint::Kind::Gbnf:
        return cache.get(kGbnfKey, output.text, [](const std::string& text) { return compile_gbnf(text); });
    }
  } catch (const Error& e) {
    throw invalid_request(fmt::format("'{}' does not compile: {}", output.param, e.what()), output.param,
                          output.kind == OutputConstraint::Kind::Gbnf ? "invalid_grammar" : "invalid_schema");
  }
  return std::nullopt;
}

}  // namespace

std::optional<Grammar> GrammarCache::find(const std::string& key) {
  std::lock_guard lock(mutex_);
  const auto found = index_.find(key);
  if (found == index_.end()) return std::nullopt;
  entries_.splice(entries_.begin(), entries_, found->second);
  return found->second->second;
}

void GrammarCache::insert(std::string key, const Grammar& grammar) {
  std::lock_guard lock(mutex_);
  if (index_.count(key) || capacity_ == 0) return;  // another request compiled it meanwhile
  entries_.emplace_front(std::move(key), grammar);
  index_[entries_.front().first] = entries_.begin();
  if (entries_.size() > capacity_) {
    index_.erase(entries_.back().first);
    entries_.pop_back();
  }
}

size_t GrammarCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::optional<Grammar> chat_output_grammar(const ChatRequest& request, chat::ToolCallFormat format, chat::ThinkBlock think,
                                           GrammarCache& cache) {
  const ToolChoice& choice = request.tool_choice;
  const bool auto_calls = choice.mode == ToolChoice::Mode::Auto && !request.tools.empty();
  if (choice.mode != ToolChoice::Mode::Required && choice.mode != ToolChoice::Mode::Function && !auto_calls)
    return constraint_grammar(request.output, cache);
  std::vector<chat::ToolFunction> callable;
  for (const chat::ToolFunction& tool : request.tools)
    if (choice.mode != ToolChoice::Mode::Function || tool.name == choice.function) callable.push_back(tool);
  try {
    const std::string gbnf = chat::with_think_block(
        auto_calls ? chat::tool_call_auto_gbnf(format, callable, request.parallel_tool_calls)
                   : chat::tool_call_gbnf(format, callable, request.parallel_tool_calls),
        // With "required" or a named function, an optional think block would let a weak model
        // think until max_tokens instead of calling: it calls at once unless the prompt has
        // already opened the block.
        auto_calls || think == chat::ThinkBlock::Open ? think : chat::ThinkBlock::None);
    return cache.get(kGbnfKey, gbnf, [](const std::string& text) { return compile_gbnf(text); });
  } catch (const Error& e) {
    throw invalid_request(fmt::format("the tools' parameters cannot constrain a call: {}", e.what()), "tools",
                          "invalid_schema");
  }
}

std::optional<Grammar> completion_output_grammar(const CompletionRequest& request, GrammarCache& cache) {
  return constraint_grammar(request.output, cache);
}

}  // namespace slm::server
