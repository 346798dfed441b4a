// Rendering a model's chat template (GGUF `tokenizer.chat_template`) the way Hugging Face
// transformers' apply_chat_template(..., tokenize=False) does.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "slm/jinja.hpp"

namespace slm {

// The context is transformers' standard one: `messages`, `tools` (None when absent),
// `documents` = None, `add_generation_prompt`, and `bos_token` / `eos_token` only when
// given (otherwise they stay undefined), then every entry of `extra_vars` (a dict, or
// undefined for none). strftime_now() reads the local clock unless `fixed_now` is set.
// Throws slm::Error on template errors and jinja::TemplateException when the template
// calls raise_exception(message).
std::string apply_chat_template(std::string_view template_source, const jinja::Value& messages,
                                const jinja::Value& tools, bool add_generation_prompt,
                                std::optional<std::string> bos_token, std::optional<std::string> eos_token,
                                const jinja::Value& extra_vars, std::optional<std::tm> fixed_now = {});

// The same with a template parsed once.
std::string apply_chat_template(const jinja::Template& chat_template, const jinja::Value& messages,
                                const jinja::Value& tools, bool add_generation_prompt,
                                std::optional<std::string> bos_token, std::optional<std::string> eos_token,
                                const jinja::Value& extra_vars, std::optional<std::tm> fixed_now = {});

}  // namespace slm
