#include "slm/chat_template.hpp"

namespace slm {

std::string apply_chat_template(const jinja::Template& chat_template, const jinja::Value& messages,
                                const jinja::Value& tools, bool add_generation_prompt,
                                std::optional<std::string> bos_token, std::optional<std::string> eos_token,
                                const jinja::Value& extra_vars, std::optional<std::tm> fixed_now) {
  jinja::Value context = jinja::Value::dict();
  context.set("messages", messages);
  context.set("tools", tools.is_undefined() ? jinja::Value::none() : tools);
  context.set("documents", jinja::Value::none());
  context.set("add_generation_prompt", add_generation_prompt);
  // transformers passes tokenizer.special_tokens_map, which leaves out missing tokens.
  if (bos_token) context.set("bos_token", *bos_token);
  if (eos_token) context.set("eos_token", *eos_token);
  for (const auto& [name, value] : extra_vars.as_dict().entries) context.set(name, value);
  jinja::RenderOptions options;
  options.fixed_now = fixed_now;
  return chat_template.render(context, options);
}

std::string apply_chat_template(std::string_view template_source, const jinja::Value& messages,
                                const jinja::Value& tools, bool add_generation_prompt,
                                std::optional<std::string> bos_token, std::optional<std::string> eos_token,
                                const jinja::Value& extra_vars, std::optional<std::tm> fixed_now) {
  return apply_chat_template(jinja::Template::parse(template_source), messages, tools, add_generation_prompt,
                             std::move(bos_token), std::move(eos_token), extra_vars, fixed_now);
}

}  // namespace slm
