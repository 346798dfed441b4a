// The BPE pre-tokenizer: splits text into words before byte-level BPE merges them, with the
// regex list that tokenizer.ggml.pre names, and the other per-pre-tokenizer settings
// llama.cpp attaches to that name.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace slm::tokenizer {

struct PreTokenizerSpec {
  std::string_view pre_name;                 // the tokenizer.ggml.pre value
  std::span<const std::string_view> patterns;  // applied one after another, each splitting further
  bool ignore_merges = false;                // a word already in the vocabulary is one token (Llama 3)
  bool clean_spaces = true;                  // detokenize drops spaces before , . ? ! and 's 're ...
  bool add_bos = false;                      // llama.cpp's add_bos default for this pre-tokenizer
};

// The spec for a tokenizer.ggml.pre value ("" means "default"); nullptr when unknown.
const PreTokenizerSpec* find_pre_tokenizer_spec(std::string_view pre_name);

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

// Rewrites \s and \S as explicit classes of the Unicode White_Space characters that
// llama.cpp's splitter counts as whitespace: PCRE2's \s under UCP leaves out U+0085 (NEL).
// Exposed for tests.
std::string translate_whitespace_escapes(std::string_view pattern);

}  // namespace slm::tokenizer
