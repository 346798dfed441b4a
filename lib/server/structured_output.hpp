// From a request's response_format, grammar or tool_choice to the grammar its reply is held to,
// compiled once per distinct text: clients send the same schema with every request, and a
// schema's compile costs milliseconds, a whole vocabulary's first masks more.
#pragma once

#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "lib/chat/tool_calls.hpp"
#include "lib/server/openai_request.hpp"
#include "slm/grammar.hpp"

namespace slm::server {

// Compiled grammars by source (its kind and text), least recently used dropped past `capacity`.
// Thread-safe; a Grammar is immutable and shared by the requests that use it.
class GrammarCache {
 public:
  explicit GrammarCache(size_t capacity = 64) : capacity_(capacity) {}
  // The cached grammar of this kind and text, else compile(text) (whose errors propagate, and
  // are not cached).
  template <typename Compile>
  Grammar get(char kind, const std::string& text, Compile compile) {
    std::string key = kind + text;
    if (std::optional<Grammar> found = find(key)) return *found;
    Grammar grammar = compile(text);  // outside the lock: other requests go on meanwhile
    insert(std::move(key), grammar);
    return grammar;
  }
  size_t size() const;

 private:
  std::optional<Grammar> find(const std::string& key);
  void insert(std::string key, const Grammar& grammar);

  size_t capacity_;
  mutable std::mutex mutex_;
  std::list<std::pair<std::string, Grammar>> entries_;  // most recently used first
  std::unordered_map<std::string, std::list<std::pair<std::string, Grammar>>::iterator> index_;
};

// The grammar a chat reply is held to: its response_format or grammar; else, with tool_choice
// "required" or a named function, a call in `format` to one of the (named) tools with
// arguments valid against its parameters (parallel_tool_calls: up to four); with tools and
// tool_choice "auto", free text in which no call begins, or such calls. nullopt: free text.
// A tool-call grammar lets a reasoning model's <think> block come first, as `think` says (an
// optional block only with "auto").
// A schema or grammar that does not compile is a 400 naming the field and the keyword or line.
std::optional<Grammar> chat_output_grammar(const ChatRequest& request, chat::ToolCallFormat format, chat::ThinkBlock think,
                                           GrammarCache& cache);
std::optional<Grammar> completion_output_grammar(const CompletionRequest& request, GrammarCache& cache);

}  // namespace slm::server
