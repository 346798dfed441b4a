// slm::Tokenizer: tokenize, token_to_piece, detokenize and the accessors.
#include "slm/tokenizer.hpp"

#include <string>
#include <unordered_map>

#include "lib/tokenizer/tokenizer_state.hpp"
#include "lib/tokenizer/unicode.hpp"

namespace slm {

using tokenizer::TokenizerState;

namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581

// SentencePiece input: every space becomes '▁', with one more in front when asked.
std::string escape_spm_spaces(std::string_view text, bool add_prefix) {
  std::string escaped;
  escaped.reserve(text.size() + text.size() / 4 + kSpmSpace.size());
  if (add_prefix) escaped += kSpmSpace;
  for (const char c : text) {
    if (c == ' ') {
      escaped += kSpmSpace;
    } else {
      escaped += c;
    }
  }
  return escaped;
}

void tokenize_bpe_fragment(const TokenizerState& state, std::string_view raw, std::vector<TokenId>& out) {
  std::string text = tokenizer::sanitize_utf8(raw);
  if (state.escape_spaces) text = escape_spm_spaces(text, /*add_prefix=*/false);
  // Running text repeats its words; merging each distinct word once halves the time on prose.
  std::unordered_map<std::string, std::vector<TokenId>, tokenizer::TransparentStringHash, std::equal_to<>> known_words;
  std::string merge_input;
  for (const std::string_view word : state.pre_tokenizer->split(text)) {
    merge_input.clear();
    if (state.byte_level) {
      tokenizer::append_byte_level(merge_input, word);
    } else {
      merge_input = word;
    }
    if (const auto known = known_words.find(merge_input); known != known_words.end()) {
      out.insert(out.end(), known->second.begin(), known->second.end());
      continue;
    }
    const size_t first = out.size();
    state.bpe->encode_word(state.vocabulary, merge_input, out);
    known_words.emplace(merge_input, std::vector<TokenId>(out.begin() + static_cast<std::ptrdiff_t>(first), out.end()));
  }
}

// llama.cpp's detokenizer clean-up for BPE vocabularies with clean_spaces: three passes over
// the bytes, kept exactly as llama_vocab::impl::detokenize performs them (including reading
// the second pass's blanked byte in its next step).
void clean_up_spaces(std::string& text) {
  // Pass 1: " ?", " !", " .", " ," lose the space.
  {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (i > 0 && text[i - 1] == ' ' && (c == '?' || c == '!' || c == '.' || c == ',')) out.pop_back();
      out += c;
    }
    text.swap(out);
  }
  // Pass 2: " ' " becomes "'".
  {
    size_t kept = text.empty() ? 0 : 1;
    for (size_t i = 1; i < text.size(); ++i) {
      const char c = text[i];
      if (c == '\'' && i + 1 < text.size() && text[i - 1] == ' ' && text[i + 1] == ' ') {
        --kept;
        text[++i] = '\0';  // the space after is skipped; llama.cpp blanks it in place
      }
      text[kept++] = c;
    }
    text.resize(kept);
  }
  // Pass 3: " 's", " 'm", " 're", " 've" lose the space (" 't", " 'd", " 'll" keep it).
  {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (i > 0 && text[i - 1] == ' ' && c == '\'' && i + 1 < text.size()) {
        const char next = text[i + 1];
        const bool two_letters = i + 2 < text.size();
        if (next == 's' || next == 'm' ||
            (two_letters && ((next == 'r' && text[i + 2] == 'e') || (next == 'v' && text[i + 2] == 'e')))) {
          out.pop_back();
        }
      }
      out += c;
    }
    text.swap(out);
  }
}

}  // namespace

void TokenizerState::check_id(TokenId id) const {
  if (!vocabulary.contains(id)) {
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " +
                std::to_string(vocabulary.size()) + " tokens");
  }
}

Tokenizer::Tokenizer(std::shared_ptr<const TokenizerState> state) : state_(std::move(state)) {}
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_metadata(TokenizerMetadata metadata, std::string_view source) {
  return Tokenizer(tokenizer::build_tokenizer_state(std::move(metadata), source));
}

std::vector<TokenId> Tokenizer::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  const TokenizerState& state = *state_;
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && state.add_bos) out.push_back(state.bos);

  const auto fragments = tokenizer::split_on_special_tokens(text, state.special_tokens, parse_special);
  // SentencePiece puts its space prefix at the start of the text and after every special
  // token, as llama.cpp does.
  bool previous_was_special = true;
  for (const auto& fragment : fragments) {
    if (fragment.token >= 0) {
      out.push_back(fragment.token);
      previous_was_special = true;
      continue;
    }
    if (state.kind == TokenizerKind::Spm) {
      const std::string escaped = escape_spm_spaces(fragment.text, state.add_space_prefix && previous_was_special);
      state.spm->tokenize(state.vocabulary, escaped, out);
    } else {
      tokenize_bpe_fragment(state, fragment.text, out);
    }
    previous_was_special = false;
  }

  if (add_special && state.add_eos) out.push_back(state.eos);
  return out;
}

std::string Tokenizer::token_to_piece(TokenId id, bool render_special) const {
  state_->check_id(id);
  if (!render_special && state_->is_special(id)) return {};
  return state_->pieces[static_cast<size_t>(id)];
}

std::string Tokenizer::detokenize(std::span<const TokenId> ids, bool render_special) const {
  const TokenizerState& state = *state_;
  std::string text;
  bool strip_leading_space = state.add_space_prefix;  // only ever from the first token
  for (const TokenId id : ids) {
    state.check_id(id);
    std::string_view piece = state.pieces[static_cast<size_t>(id)];
    if (!render_special && state.is_special(id)) piece = {};
    if (strip_leading_space && !piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    strip_leading_space = false;
    text += piece;
  }
  if (state.clean_spaces) clean_up_spaces(text);
  return text;
}

TokenizerKind Tokenizer::kind() const { return state_->kind; }
const std::string& Tokenizer::pre_tokenizer() const { return state_->pre_name; }
int32_t Tokenizer::n_vocab() const { return state_->vocabulary.size(); }
TokenId Tokenizer::bos() const { return state_->bos; }
TokenId Tokenizer::eos() const { return state_->eos; }
TokenId Tokenizer::eot() const { return state_->eot; }
TokenId Tokenizer::pad() const { return state_->pad; }
TokenId Tokenizer::unknown() const { return state_->unknown; }
bool Tokenizer::add_bos() const { return state_->add_bos; }
bool Tokenizer::add_eos() const { return state_->add_eos; }
bool Tokenizer::add_space_prefix() const { return state_->add_space_prefix; }

bool Tokenizer::is_end_of_generation(TokenId id) const {
  return state_->vocabulary.contains(id) && state_->is_end_of_generation[static_cast<size_t>(id)];
}
const std::vector<TokenId>& Tokenizer::end_of_generation_ids() const { return state_->end_of_generation_ids; }

const std::string& Tokenizer::token_text(TokenId id) const {
  state_->check_id(id);
  return state_->vocabulary.texts[static_cast<size_t>(id)];
}
TokenType Tokenizer::token_type(TokenId id) const {
  state_->check_id(id);
  return state_->vocabulary.types[static_cast<size_t>(id)];
}
float Tokenizer::token_score(TokenId id) const {
  state_->check_id(id);
  return state_->vocabulary.scores[static_cast<size_t>(id)];
}
bool Tokenizer::is_special(TokenId id) const {
  state_->check_id(id);
  return state_->is_special(id);
}
std::optional<TokenId> Tokenizer::find_token(std::string_view text) const {
  const TokenId id = state_->vocabulary.find(text);
  return id >= 0 ? std::optional<TokenId>(id) : std::nullopt;
}

}  // namespace slm
