// Tokenizer construction: validating the metadata and applying llama.cpp's defaults and
// fix-ups (llama_vocab::impl::load), so that ids match llama.cpp's for the same file.
#include <algorithm>
#include <array>
#include <cctype>
#include <memory>
#include <span>
#include <string>

#include "lib/tokenizer/tokenizer_state.hpp"
#include "lib/tokenizer/unicode.hpp"

namespace slm::tokenizer {

namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

TokenType token_type_from_int(int32_t value) {
  return value >= 0 && value <= 6 ? static_cast<TokenType>(value) : TokenType::Undefined;
}

void fill_vocabulary(Vocabulary& vocabulary, TokenizerMetadata& metadata, std::string_view source) {
  const size_t n_tokens = metadata.tokens.size();
  if (n_tokens == 0) throw Error(std::string(source) + ": tokenizer.ggml.tokens is empty");
  if (n_tokens > static_cast<size_t>(INT32_MAX)) throw Error(std::string(source) + ": too many tokens");
  if (!metadata.scores.empty() && metadata.scores.size() != n_tokens) {
    throw Error(std::string(source) + ": tokenizer.ggml.scores has " + std::to_string(metadata.scores.size()) +
                " entries, expected one per token (" + std::to_string(n_tokens) + ")");
  }
  if (!metadata.token_types.empty() && metadata.token_types.size() != n_tokens) {
    throw Error(std::string(source) + ": tokenizer.ggml.token_type has " +
                std::to_string(metadata.token_types.size()) + " entries, expected one per token (" +
                std::to_string(n_tokens) + ")");
  }
  vocabulary.texts = std::move(metadata.tokens);
  vocabulary.scores = metadata.scores.empty() ? std::vector<float>(n_tokens, 0.0f) : std::move(metadata.scores);
  vocabulary.types.resize(n_tokens, TokenType::Normal);
  for (size_t i = 0; i < metadata.token_types.size(); ++i) vocabulary.types[i] = token_type_from_int(metadata.token_types[i]);
  for (size_t i = 0; i < n_tokens; ++i) {
    // An empty token could never be matched and would make special-token search loop.
    if (vocabulary.texts[i].empty()) vocabulary.texts[i] = "[EMPTY_" + std::to_string(i) + "]";
  }
  vocabulary.index_texts();
}

// A special id from metadata: absent, the "none" markers, or an id that must be in range.
TokenId special_id(const std::optional<int64_t>& value, TokenId fallback, const Vocabulary& vocabulary,
                   std::string_view key, std::string_view source) {
  if (!value) return vocabulary.contains(fallback) ? fallback : -1;
  if (*value == -1 || *value == 0xFFFFFFFFll) return -1;
  if (*value < 0 || *value >= vocabulary.size()) {
    throw Error(std::string(source) + ": " + std::string(key) + " = " + std::to_string(*value) +
                " is outside the vocabulary of " + std::to_string(vocabulary.size()) + " tokens");
  }
  return static_cast<TokenId>(*value);
}

// The first of `texts` present in the vocabulary, or -1.
TokenId first_present(const Vocabulary& vocabulary, std::span<const std::string_view> texts) {
  for (const auto text : texts) {
    const TokenId id = vocabulary.find(text);
    if (id >= 0) return id;
  }
  return -1;
}

// Texts llama.cpp recognises as end-of-turn / FIM tokens even when the file does not say so;
// it also forces them to CONTROL so that they render and parse as special tokens. Where a file
// has several, llama.cpp takes whichever its hash map yields first; we take the first listed.
constexpr std::string_view kEndOfTurnTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"};  // DeepSeek
constexpr std::string_view kFimPrefixTexts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<PRE>"};
constexpr std::string_view kFimSuffixTexts[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>", "<SUF>"};
constexpr std::string_view kFimMiddleTexts[] = {
    "<|fim_middle|>", "<fim-middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "<MID>"};
constexpr std::string_view kFimPadTexts[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>"};
constexpr std::string_view kFimRepoTexts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                                                   "<REPO>"};
constexpr std::string_view kFimFileSeparatorTexts[] = {"<|file_sep|>"};
// Every token with one of these texts ends generation.
constexpr std::string_view kEndOfGenerationTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>"};
// <|end_of_text|> (Llama 3's EOS) ends generation too when it is a control token, even in
// files whose EOS is <|eot_id|>; llama.cpp stops only at the EOS then.
constexpr std::string_view kLlama3EndOfText = "<|end_of_text|>";

void set_special_ids(TokenizerState& state, const TokenizerMetadata& metadata, std::string_view source) {
  const Vocabulary& vocabulary = state.vocabulary;
  // llama.cpp's defaults for SPM files that predate the id keys; BPE files always carry them.
  const bool spm = state.kind == TokenizerKind::Spm;
  state.bos = special_id(metadata.bos_id, spm ? 1 : -1, vocabulary, "tokenizer.ggml.bos_token_id", source);
  state.eos = special_id(metadata.eos_id, spm ? 2 : -1, vocabulary, "tokenizer.ggml.eos_token_id", source);
  state.unknown = special_id(metadata.unknown_id, spm ? 0 : -1, vocabulary, "tokenizer.ggml.unknown_token_id", source);
  state.pad = special_id(metadata.padding_id, -1, vocabulary, "tokenizer.ggml.padding_token_id", source);
  state.eot = special_id(metadata.eot_id, -1, vocabulary, "tokenizer.ggml.eot_token_id", source);
  state.eom = special_id(metadata.eom_id, -1, vocabulary, "tokenizer.ggml.eom_token_id", source);
}

void apply_control_overrides_and_end_of_generation(TokenizerState& state) {
  Vocabulary& vocabulary = state.vocabulary;
  const auto force_control = [&](TokenId id) {
    if (id >= 0) vocabulary.types[static_cast<size_t>(id)] = TokenType::Control;
  };
  if (state.eot < 0) {
    state.eot = first_present(vocabulary, kEndOfTurnTexts);
    force_control(state.eot);
  }
  if (state.eom < 0) {
    state.eom = vocabulary.find("<|eom_id|>");
    force_control(state.eom);
  }
  for (const auto texts : {std::span<const std::string_view>(kFimPrefixTexts), std::span<const std::string_view>(kFimSuffixTexts), std::span<const std::string_view>(kFimMiddleTexts)}) force_control(first_present(vocabulary, texts));

  std::vector<TokenId> end_of_generation;
  for (const auto texts : {std::span<const std::string_view>(kFimPadTexts), std::span<const std::string_view>(kFimRepoTexts), std::span<const std::string_view>(kFimFileSeparatorTexts)}) {
    const TokenId id = first_present(vocabulary, texts);
    force_control(id);
    if (id >= 0) end_of_generation.push_back(id);
  }
  for (const auto text : kEndOfGenerationTexts) {
    const TokenId id = vocabulary.find(text);
    force_control(id);
    if (id >= 0) end_of_generation.push_back(id);
  }
  const TokenId end_of_text = vocabulary.find(kLlama3EndOfText);
  if (end_of_text >= 0 && vocabulary.types[static_cast<size_t>(end_of_text)] == TokenType::Control) {
    end_of_generation.push_back(end_of_text);
  }
  for (const TokenId id : {state.eos, state.eot, state.eom}) {
    if (id >= 0) end_of_generation.push_back(id);
  }
  std::sort(end_of_generation.begin(), end_of_generation.end());
  end_of_generation.erase(std::unique(end_of_generation.begin(), end_of_generation.end()), end_of_generation.end());
  state.end_of_generation_ids = std::move(end_of_generation);
  state.is_end_of_generation.assign(static_cast<size_t>(vocabulary.size()), false);
  for (const TokenId id : state.end_of_generation_ids) state.is_end_of_generation[static_cast<size_t>(id)] = true;
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// Control, user-defined and unknown tokens, longest first, with llama.cpp's per-model
// whitespace stripping (which it sets by model name, the files do not carry it).
void collect_special_tokens(TokenizerState& state, std::string_view model_name) {
  const Vocabulary& vocabulary = state.vocabulary;
  for (TokenId id = 0; id < vocabulary.size(); ++id) {
    const TokenType type = vocabulary.types[static_cast<size_t>(id)];
    if (type != TokenType::Control && type != TokenType::UserDefined && type != TokenType::Unknown) continue;
    state.special_tokens.push_back(SpecialToken{id, vocabulary.texts[static_cast<size_t>(id)], type == TokenType::UserDefined});
  }
  std::stable_sort(state.special_tokens.begin(), state.special_tokens.end(),
                   [](const SpecialToken& a, const SpecialToken& b) { return a.text.size() > b.text.size(); });

  const auto find_special = [&](std::string_view text) -> SpecialToken* {
    for (auto& token : state.special_tokens) {
      if (token.text == text) return &token;
    }
    return nullptr;
  };
  const std::string name = lowercase(std::string(model_name));
  if (state.pre_name == "jina-v2-de" || state.pre_name == "jina-v2-es" || state.pre_name == "jina-v2-code") {
    if (SpecialToken* mask = find_special("<mask>")) mask->strip_left = true;
  } else if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (auto& token : state.special_tokens) token.strip_right = true;
    for (const auto text : {"<unk>", "<s>", "<|endoftext|>"}) {
      if (SpecialToken* token = find_special(text)) token->strip_right = false;
    }
  }
}

std::string compute_piece(const TokenizerState& state, TokenId id) {
  const std::string& text = state.vocabulary.texts[static_cast<size_t>(id)];
  switch (state.vocabulary.types[static_cast<size_t>(id)]) {
    case TokenType::Control:
    case TokenType::Unknown:
    case TokenType::UserDefined:
      return text;
    case TokenType::Normal:
      break;
    case TokenType::Byte:
      // "<0xNN>" gives its byte; another byte token renders as its text (SPM) or as nothing.
      if (const auto byte = parse_byte_token(text)) return std::string(1, static_cast<char>(*byte));
      return state.kind == TokenizerKind::Spm ? text : std::string();
    case TokenType::Undefined:
    case TokenType::Unused:
      return {};
  }
  std::string piece;
  if (state.kind == TokenizerKind::Spm || state.escape_spaces) {
    piece.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, kSpmSpace.size(), kSpmSpace) == 0) {
        piece += ' ';
        i += kSpmSpace.size();
      } else {
        piece += text[i++];
      }
    }
    return piece;
  }
  if (!state.byte_level) return text;
  // Byte-level BPE: each character stands for one byte. A character outside the mapping
  // (a malformed vocabulary) is kept as it is.
  for (size_t i = 0; i < text.size();) {
    const size_t start = i;
    const auto codepoint = decode_utf8_strict(text, i);
    if (!codepoint) {
      piece += text[i++];
      continue;
    }
    const auto byte = unicode_to_byte(*codepoint);
    if (byte) {
      piece += static_cast<char>(*byte);
    } else {
      piece.append(text, start, i - start);
    }
  }
  return piece;
}

}  // namespace

std::shared_ptr<const TokenizerState> build_tokenizer_state(TokenizerMetadata metadata, std::string_view source) {
  auto state = std::make_shared<TokenizerState>();
  const PreTokenizerSpec* pre_spec = nullptr;
  if (metadata.model == "llama") {
    state->kind = TokenizerKind::Spm;
    state->pre_name = metadata.pre.empty() ? "default" : metadata.pre;
  } else if (metadata.model == "gpt2" || metadata.model == "gemma4") {
    state->kind = TokenizerKind::Bpe;
    // Gemma 4's tokenizer model implies its pre-tokenizer, whatever tokenizer.ggml.pre says.
    state->pre_name = metadata.model == "gemma4" ? "gemma4" : metadata.pre.empty() ? "default" : metadata.pre;
    pre_spec = find_pre_tokenizer_spec(state->pre_name);
    if (pre_spec == nullptr) {
      throw Error(std::string(source) + ": unknown pre-tokenizer tokenizer.ggml.pre = '" + state->pre_name + "'");
    }
  } else {
    throw Error(std::string(source) + ": unsupported tokenizer model tokenizer.ggml.model = '" + metadata.model +
                "' (expected 'llama', 'gpt2' or 'gemma4')");
  }

  fill_vocabulary(state->vocabulary, metadata, source);
  set_special_ids(*state, metadata, source);
  const bool spm = state->kind == TokenizerKind::Spm;
  state->add_bos = spm ? metadata.add_bos.value_or(true)
                       : pre_spec->always_add_bos || metadata.add_bos.value_or(pre_spec->add_bos);
  state->add_eos = metadata.add_eos.value_or(false);
  state->add_space_prefix = metadata.add_space_prefix.value_or(spm);
  state->clean_spaces = spm ? false : pre_spec->clean_spaces;
  state->escape_spaces = !spm && pre_spec->escape_spaces;
  state->byte_level = !spm && pre_spec->byte_level;
  if (state->add_bos && state->bos < 0) throw Error(std::string(source) + ": the tokenizer adds BOS but has no BOS token");
  if (state->add_eos && state->eos < 0) throw Error(std::string(source) + ": the tokenizer adds EOS but has no EOS token");

  apply_control_overrides_and_end_of_generation(*state);
  collect_special_tokens(*state, metadata.model_name);

  if (spm) {
    state->spm = SpmModel::build(state->vocabulary, state->unknown);
  } else {
    const BpeOptions options{pre_spec->ignore_merges, pre_spec->newline_runs_whole, pre_spec->byte_level};
    state->bpe = BpeModel::build(metadata.merges, state->vocabulary, options, source);
    state->pre_tokenizer.emplace(pre_spec->patterns);
  }

  state->pieces.resize(static_cast<size_t>(state->vocabulary.size()));
  for (TokenId id = 0; id < state->vocabulary.size(); ++id) state->pieces[static_cast<size_t>(id)] = compute_piece(*state, id);
  return state;
}

}  // namespace slm::tokenizer
