// A session owns the KV cache and scratch memory for one conversation with a model: one
// sequence of a BatchDecoder (slm/batch.hpp) whose pool holds exactly its context.
// Logits are bit-identical whatever the batch split and the thread count: every
// output element is reduced in a fixed order by exactly one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "slm/model.hpp"

namespace slm {

// The KV cache's element type: F16 (as llama.cpp's default), F32, or Q8_0 (GGML's blocks of 32
// int8 and an fp16 scale: 8.5 bits an element; needs a head_dim that is a multiple of 32).
enum class KvType { F16, F32, Q8_0 };

// "f16", "f32", "q8_0" (llama.cpp's -ctk / -ctv names).
const char* kv_type_name(KvType type);
// The type of such a name; throws slm::Error for another.
KvType kv_type_named(std::string_view name);
// The KV cache bytes of one position of the model (keys and values of its attention layers).
// Throws slm::Error for a Q8_0 cache of a head_dim that is not a multiple of 32.
uint64_t kv_bytes_per_token(const ModelConfig& config, KvType type);

struct SessionOptions {
  int32_t n_ctx = 0;      // 0: min(model's training context, 4096)
  int32_t n_threads = 0;  // 0: the number of physical cores
  int32_t n_batch = 512;  // tokens evaluated together; larger batches are split (results are identical)
  KvType kv_type = KvType::F16;
  int32_t checkpoint_interval = 512;  // hybrid models' state checkpoints (slm/batch.hpp)
  int32_t max_checkpoints = 8;
  int32_t logit_vocab = 0;  // > 0: a cut output head (BatchDecoderOptions::logit_vocab)
};

class BatchDecoder;  // slm/batch.hpp: a session is one sequence of a BatchDecoder
struct BatchRow;
using SequenceId = int32_t;

class Session {
 public:
  // Throws slm::Error when n_ctx exceeds the model's training context or the options are invalid.
  explicit Session(std::shared_ptr<const Model> model, SessionOptions options = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Evaluates `tokens` at positions start_pos, start_pos+1, ...; the cache keeps positions
  // below start_pos (start_pos <= n_past(); a smaller start_pos drops the rest first).
  // Returns the logits of the last token (n_vocab floats), or with all_logits of every token
  // (tokens.size() x n_vocab, row-major). The span stays valid until the next eval.
  // Throws slm::Error for an empty batch, a token id outside the vocabulary, or a batch that
  // would run past n_ctx; the cache is left as it was.
  std::span<const float> eval(std::span<const TokenId> tokens, int32_t start_pos, bool all_logits = false);
  // The same at start_pos = n_past().
  std::span<const float> eval(std::span<const TokenId> tokens, bool all_logits = false) {
    return eval(tokens, n_past(), all_logits);
  }

  // Forgets every position >= n_keep (chat reuse, speculative decoding).
  void truncate(int32_t n_keep);
  void reset() { truncate(0); }

  // The longest prefix of at most n cached positions that eval() continues without
  // re-evaluating any (hybrid models: the latest state checkpoint at or before it).
  int32_t reusable_prefix(int32_t n) const;
  // Rows evaluated since construction, re-evaluated ones (a hybrid model's rollback) included.
  uint64_t rows_evaluated() const;

  int32_t n_past() const;
  int32_t n_ctx() const;
  int32_t n_threads() const;
  // The tokens whose keys and values the cache holds, position by position.
  const std::vector<TokenId>& cached_tokens() const;
  const Model& model() const;
  const std::shared_ptr<const Model>& model_ptr() const;

 private:
  std::unique_ptr<BatchDecoder> decoder_;
  SequenceId sequence_ = 0;
  std::vector<BatchRow> rows_;
};

// Physical cores of this machine (hyper-threads do not help a memory- and FMA-bound loop).
int32_t default_thread_count();

}  // namespace slm
