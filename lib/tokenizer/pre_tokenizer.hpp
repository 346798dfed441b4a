// The BPE pre-tokenizer: splits text into words before BPE merges them, with the regex list
// that tokenizer.ggml.pre names, and the other per-pre-tokenizer settings llama.cpp attaches
// to that name.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace slm::tokenizer {

struct PreTokenizerSpec {
  std::string_view pre_name;                   // the tokenizer.ggml.pre value
  std::span<const std::string_view> patterns;  // applied one after another, each splitting further
  bool ignore_merges = false;                  // a word already in the vocabulary is one token (Llama 3)
  bool clean_spaces = true;                    // detokenize drops spaces before , . ? ! and 's 're ...
  bool add_bos = false;                        // llama.cpp's add_bos default for this pre-tokenizer
  bool always_add_bos = false;                 // BOS is added even when the file says not (Gemma 4)
  // Byte-level BPE maps every byte to a printable character (GPT-2's bytes_to_unicode) before
  // merging, and falls back to one-character tokens. The others merge the raw UTF-8 and fall
  // back to <0xNN> tokens (Gemma 4, Sarvam, the whitespace pre-tokenizer).
  bool byte_level = true;
  bool escape_spaces = false;       // ' ' becomes U+2581 before splitting, as in SentencePiece (Gemma 4)
  bool newline_runs_whole = false;  // a run of '\n' that is a token stays one token (Gemma 4)
};

// The spec for a tokenizer.ggml.pre value ("" means "default"); nullptr when unknown.
const PreTokenizerSpec* find_pre_tokenizer_spec(std::string_view pre_name);
// Every known name, in the order of llama.cpp's llama_vocab::impl::load.
std::span<const PreTokenizerSpec> all_pre_tokenizer_specs();

// One compiled regex list. Splitting follows llama.cpp's unicode_regex_split: each regex runs
// over each piece the previous regexes produced, and both its matches and the text between
// matches become pieces, so no byte is ever dropped.
class PreTokenizer {
 public:
  explicit PreTokenizer(std::span<const std::string_view> patterns);  // throws slm::Error
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  // `text` must be valid UTF-8 (see sanitize_utf8). The pieces are views into it, in order,
  // and together cover it exactly.
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  struct CompiledRegex;
  std::vector<std::unique_ptr<CompiledRegex>> regexes_;
};

}  // namespace slm::tokenizer
