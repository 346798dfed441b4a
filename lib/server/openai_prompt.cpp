#include "lib/server/openai_prompt.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "lib/chat/chat_think.hpp"
#include "lib/chat/chat_tokens.hpp"
#include "lib/server/api_error.hpp"

namespace slm::server {

namespace {

// The template's variables with the request's on top. A new dict: the template's own is shared
// by every request and must not change.
jinja::Value merged_template_variables(const jinja::Value& server_variables, const jinja::Value& request_variables) {
  if (!request_variables.is_dict()) return server_variables;
  jinja::Value merged = jinja::Value::dict();
  for (const jinja::Value* source : {&server_variables, &request_variables})
    if (source->is_dict())
      for (const auto& [name, value] : source->as_dict().entries) merged.set(name, value);
  return merged;
}

}  // namespace

PreparedPrompt prepare_chat_prompt(const chat::ChatTemplate& chat_template, const Tokenizer& tokenizer,
                                   const ChatRequest& request) {
  chat::ChatTemplate with_request_variables = chat_template;  // the parsed template is shared, not copied
  with_request_variables.extra_vars = merged_template_variables(chat_template.extra_vars, request.template_kwargs);
  std::string rendered;
  try {
    rendered = chat::render_chat(with_request_variables, request.messages, /*add_generation_prompt=*/true,
                                 request.tools_value);
  } catch (const jinja::TemplateException& e) {  // the template's raise_exception(): the conversation's fault
    throw invalid_request(fmt::format("the chat template refused the messages: {}", e.what()), "messages");
  } catch (const Error& e) {
    throw invalid_request(fmt::format("the chat template failed on these messages: {}", e.what()), "messages");
  }
  PreparedPrompt prompt;
  prompt.tokens = chat::tokenize_prompt(tokenizer, rendered);
  prompt.starts_inside_thinking = chat::ends_inside_thinking(rendered);
  prompt.template_stop_strings = chat_template.stop_strings;
  return prompt;
}

PreparedPrompt prepare_completion_prompt(const Tokenizer& tokenizer, const CompletionRequest& request) {
  PreparedPrompt prompt;
  if (!request.prompt_is_token_ids) {
    prompt.tokens = chat::tokenize_prompt(tokenizer, request.prompt_text);
    return prompt;
  }
  prompt.tokens.reserve(request.prompt_token_ids.size());
  for (size_t i = 0; i < request.prompt_token_ids.size(); ++i) {
    const int64_t id = request.prompt_token_ids[i];
    if (id < 0 || id >= tokenizer.n_vocab())
      throw invalid_request(fmt::format("prompt[{}] = {} is not a token id of this model's vocabulary of {}", i, id,
                                        tokenizer.n_vocab()),
                            fmt::format("prompt[{}]", i), "invalid_value");
    prompt.tokens.push_back(TokenId(id));
  }
  return prompt;
}

GenerationRequest make_generation_request(PreparedPrompt prompt, const GenerationParams& params, int32_t n_ctx,
                                          const char* prompt_param) {
  const int64_t n_prompt = int64_t(prompt.tokens.size());
  if (n_prompt == 0)
    throw invalid_request("the prompt is empty: it has no tokens (and the model adds no BOS token)", prompt_param);
  if (n_prompt >= n_ctx)
    throw invalid_request(fmt::format("the prompt has {} tokens, but the context holds {} per request: the prompt "
                                      "must leave room for at least one generated token",
                                      n_prompt, n_ctx),
                          prompt_param, "context_length_exceeded");
  GenerationRequest request;
  const int32_t room = int32_t(n_ctx - n_prompt);
  request.max_tokens = std::min(params.max_tokens.value_or(room), room);
  request.prompt = std::move(prompt.tokens);
  request.sampling = params.sampling;
  request.stop = params.stop;
  for (std::string& stop : prompt.template_stop_strings)
    if (std::find(request.stop.begin(), request.stop.end(), stop) == request.stop.end())
      request.stop.push_back(std::move(stop));
  request.stop_at_end_of_generation = true;
  request.top_logprobs = params.top_logprobs;
  return request;
}

}  // namespace slm::server
