// Text <-> token ids, built from a GGUF file's tokenizer.ggml.* metadata, giving the same ids
// as llama.cpp's llama_tokenize for the tokenizer families small models use:
//
//   "llama" (SentencePiece, SPM): spaces become U+2581 '▁', a '▁' is prepended to the text
//       unless tokenizer.ggml.add_space_prefix is false (Gemma 2/3), symbols are merged pairwise
//       by highest vocabulary score, and any piece the vocabulary lacks falls back to <0xNN>
//       byte tokens. Llama 1/2, Phi-3, Gemma 2/3, TinyStories.
//   "gpt2" (BPE): the text is split by the pre-tokenizer regexes named by tokenizer.ggml.pre
//       (every name llama.cpp knows: llama3, qwen2, qwen35, gpt-4o, llama4, kimi-k2,
//       deepseek-v3, ...), every byte is mapped to a printable character (GPT-2's
//       bytes_to_unicode), and symbols are merged by rank from tokenizer.ggml.merges. A few
//       pre-tokenizers (sarvam-moe, whitespace) merge raw UTF-8 instead, with <0xNN> fallback.
//       Llama 3, Qwen2/2.5/3/3.5, Phi-4-mini, GPT-2, StarCoder, Falcon, DeepSeek, ...
//   "gemma4" (BPE over SentencePiece-style text): ' ' becomes '▁', each line is merged whole
//       by rank, unknown bytes become <0xNN> tokens. Gemma 4.
//
// Special tokens (CONTROL, and UNKNOWN such as <unk>) are recognised in the text only when
// parse_special is true; USER_DEFINED tokens are always recognised, as in llama.cpp and
// Hugging Face tokenizers. A Tokenizer is immutable after construction and safe to share
// between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slm/error.hpp"

namespace slm {

class GgufFile;
namespace tokenizer {
struct TokenizerState;
}

using TokenId = int32_t;

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

enum class TokenizerKind { Spm, Bpe };

// Everything the tokenizer reads from a file, as plain data. from_gguf() fills it from the
// tokenizer.ggml.* keys; tests and tools can fill it by hand. Absent optional fields take
// llama.cpp's defaults (see Tokenizer::from_metadata).
struct TokenizerMetadata {
  std::string model;                  // tokenizer.ggml.model: "llama", "gpt2" or "gemma4"
  std::string pre;                    // tokenizer.ggml.pre; "" = "default"
  std::string model_name;             // general.name (Phi-3 strips spaces after special tokens)
  std::vector<std::string> tokens;    // tokenizer.ggml.tokens
  std::vector<float> scores;          // tokenizer.ggml.scores: empty or one per token
  std::vector<int32_t> token_types;   // tokenizer.ggml.token_type: empty or one per token
  std::vector<std::string> merges;    // tokenizer.ggml.merges ("left right"), BPE only
  // Special token ids; nullopt = key absent. The GGUF "none" markers -1 / 0xFFFFFFFF are read
  // as absent; any other id outside the vocabulary is an error. Absent SPM ids take llama.cpp's
  // defaults (BOS 1, EOS 2, unknown 0); absent BPE ids stay -1 (llama.cpp would use 11). An
  // absent EOT is found by text (<|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>).
  std::optional<int64_t> bos_id, eos_id, eot_id, eom_id, unknown_id, padding_id;
  std::optional<bool> add_bos, add_eos, add_space_prefix;
};

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* (and general.name). Throws slm::Error naming the file and key on
  // missing or malformed metadata.
  static Tokenizer from_gguf(const GgufFile& file);
  // Validates and builds. Throws slm::Error for an unknown model or pre-tokenizer, array
  // lengths that do not match the token list, or special ids outside the vocabulary.
  // `source` names the origin in error messages.
  static Tokenizer from_metadata(TokenizerMetadata metadata, std::string_view source = "<metadata>");

  Tokenizer(const Tokenizer&) = default;
  Tokenizer(Tokenizer&&) noexcept = default;
  Tokenizer& operator=(const Tokenizer&) = default;
  Tokenizer& operator=(Tokenizer&&) noexcept = default;
  ~Tokenizer();

  // add_special: add BOS / EOS where add_bos() / add_eos() say so.
  // parse_special: text of CONTROL / UNKNOWN tokens ("<|im_start|>", "<s>") becomes that token;
  // otherwise it is tokenized as plain text. Any bytes are accepted: SPM falls back to byte
  // tokens, BPE reads invalid UTF-8 as U+FFFD (as llama.cpp does).
  std::vector<TokenId> tokenize(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes a token stands for: byte tokens <0xNN> give that byte, SPM '▁' gives a space,
  // BPE's byte-to-unicode mapping is undone. CONTROL / UNKNOWN tokens give their text when
  // render_special, else "". USER_DEFINED tokens always give their text. A piece may be part of
  // a UTF-8 character (see Utf8StreamDecoder). Throws slm::Error for an id out of range.
  std::string token_to_piece(TokenId id, bool render_special = true) const;

  // The concatenated pieces, as llama_detokenize(remove_special=false): an SPM tokenizer that
  // adds a space prefix drops one leading space of the first piece, and BPE tokenizers whose
  // pre-tokenizer asks for it clean up spaces before punctuation (" ," -> ","), as llama.cpp.
  std::string detokenize(std::span<const TokenId> ids, bool render_special = true) const;

  TokenizerKind kind() const;
  const std::string& pre_tokenizer() const;  // the tokenizer.ggml.pre in use ("default" when absent)
  int32_t n_vocab() const;

  TokenId bos() const;  // -1 when absent
  TokenId eos() const;
  TokenId eot() const;  // end of turn, e.g. <|eot_id|>, <|im_end|>
  TokenId pad() const;
  TokenId unknown() const;
  bool add_bos() const;
  bool add_eos() const;
  bool add_space_prefix() const;

  // EOS, EOT, EOM and the other tokens that end generation (<|im_end|>, <|eot_id|>,
  // <|endoftext|>, <|end|>, <end_of_turn>, <|eom_id|>, <|end_of_text|>, FIM pad/repo/file-sep).
  bool is_end_of_generation(TokenId id) const;
  const std::vector<TokenId>& end_of_generation_ids() const;  // ascending

  const std::string& token_text(TokenId id) const;  // the vocabulary string as stored
  TokenType token_type(TokenId id) const;           // after llama.cpp's overrides (EOG -> Control)
  float token_score(TokenId id) const;
  bool is_special(TokenId id) const;                // Control or Unknown: rendered only on request
  std::optional<TokenId> find_token(std::string_view text) const;

 private:
  explicit Tokenizer(std::shared_ptr<const tokenizer::TokenizerState> state);
  std::shared_ptr<const tokenizer::TokenizerState> state_;
};

// Turns a stream of token pieces into complete UTF-8 characters: a piece that ends inside a
// multi-byte character is held back until the character completes, so a terminal never sees
// half an emoji. Bytes that can never start or continue a valid character (a stray
// continuation byte, 0xF8-0xFF, a lead byte followed by a non-continuation byte) are passed
// through unchanged at once rather than replaced by U+FFFD: the caller gets exactly the bytes
// the model produced. flush() returns whatever is still held (an unfinished character), raw.
class Utf8StreamDecoder {
 public:
  std::string push(std::string_view bytes);
  std::string flush();
  bool has_pending() const { return !pending_.empty(); }

 private:
  std::string pending_;
};

}  // namespace slm
