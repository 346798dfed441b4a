// The architecture table: general.architecture -> what that family needs.
// Adding an architecture means adding one short file that fills an ArchSpec,
// and one line in arch_table.cpp.
#pragma once

#include <span>
#include <string_view>

#include "lib/ops/kv_pool.hpp"
#include "lib/ops/recurrent_state.hpp"
#include "slm/model.hpp"

namespace slm {

struct ForwardScratch;  // lib/model/batch_state.hpp

// One forward pass: rows of tokens from one or more sequences. The rows of each sequence are
// contiguous and at consecutive positions; its blocks hold every position up to the last row's.
struct ForwardBatch {
  std::span<const TokenId> tokens;                 // one per row
  std::span<const int32_t> positions;              // one per row
  std::span<const ops::AttentionSpan> sequences;   // which rows belong to which sequence
  std::span<const int32_t> logit_rows;             // the rows whose logits are wanted, ascending
  int32_t n_ctx = 0;  // the run's context: positions per sequence at most (LongRoPE picks its factors by it)
  const ops::RecurrentStateLayout* state_layout = nullptr;  // where each layer's state is in a span's state
  int32_t logit_vocab = 0;  // > 0: a cut head, logits of ids below it and of the end tokens only (BatchDecoderOptions)
};

// Runs the model over a batch, storing every row's keys and values in the pool, and writes
// the logits of batch.logit_rows ([logit_rows.size()][n_vocab]).
using ForwardFn = void (*)(const Model& model, ForwardScratch& scratch, ops::KvPool& pool, const ForwardBatch& batch,
                           float* logits);

struct WeightBinder;    // lib/model/weight_binder.hpp
struct LayerWeights;    // lib/model/weights.hpp

// Binds block `layer`'s tensors (shapes and types checked) into L.
using BindLayerFn = void (*)(const WeightBinder& b, const ModelConfig& config, int32_t layer, LayerWeights& L);

struct ArchSpec {
  std::string_view name;     // general.architecture
  RopeStyle rope_style;
  bool qkv_bias;             // q/k/v projections carry biases (required tensors)
  bool qk_norm;              // per-head RMSNorm on q and k (required tensors)
  ForwardFn forward;
  // The architecture's own hyperparameters, read after the common ones; nullptr: none.
  void (*read_config)(const GgufFile& file, ModelConfig& config) = nullptr;
  // nullptr: bind_llama_layer.
  BindLayerFn bind_layer = nullptr;
  // The floats a recurrent layer keeps per sequence (lib/ops/recurrent_state.hpp explains how a
  // forward pass finds them); nullptr: no layer has a state.
  int64_t (*recurrent_state_floats)(const ModelConfig& config, int32_t layer) = nullptr;
  const char* output_norm = "output_norm.weight";  // the final norm's tensor
};

// Where each recurrent layer's state lives in a sequence's state (empty for a model without).
ops::RecurrentStateLayout recurrent_state_layout(const ArchSpec& spec, const ModelConfig& config);

// The specs, one per file.
extern const ArchSpec kLlamaArch;
extern const ArchSpec kQwen2Arch;
extern const ArchSpec kQwen3Arch;
extern const ArchSpec kGemma2Arch;
extern const ArchSpec kGemma3Arch;
extern const ArchSpec kPhi3Arch;
extern const ArchSpec kQwen3MoeArch;
extern const ArchSpec kLfm2Arch;
extern const ArchSpec kQwen35Arch;

// nullptr for an architecture slm does not run.
const ArchSpec* find_arch(std::string_view name);
// "llama, qwen2, qwen3", for error messages.
std::string supported_arch_names();

// Llama's block tensors (lib/model/model_loader.cpp): attn_norm, attn_{q,k,v,output} (+ biases,
// q/k norms when the spec has them) and ffn_norm, ffn_{gate,up,down}.
void bind_llama_attention(const WeightBinder& b, const ModelConfig& config, int32_t layer, LayerWeights& L);
void bind_llama_feed_forward(const WeightBinder& b, const ModelConfig& config, int32_t layer, LayerWeights& L);
void bind_llama_layer(const WeightBinder& b, const ModelConfig& config, int32_t layer, LayerWeights& L);

// Llama's blocks of one layer (lib/model/llama.cpp), for architectures that mix them with
// their own: x += attention(RMSNorm(x)) over the pool's layer config.kv_layer(layer) (rope
// angles of each row in scratch.rope), and x += SwiGLU feed-forward (or experts) of RMSNorm(x).
void llama_attention_block(const Model& model, ForwardScratch& scratch, ops::KvPool& pool, const ForwardBatch& batch,
                           int32_t layer);
void llama_feed_forward_block(const Model& model, ForwardScratch& scratch, int64_t n_rows, int32_t layer);
// The rows' token embeddings into scratch.x and their rope angles into scratch.rope; and, at the
// end, the final norm, the output projection of batch.logit_rows (only the rows batch.logit_vocab
// keeps) and the final soft cap, if the model has one.
void llama_input_rows(const Model& model, ForwardScratch& scratch, const ForwardBatch& batch);
void llama_output_logits(const Model& model, ForwardScratch& scratch, const ForwardBatch& batch, float* logits);

// A hybrid model's forward pass (lib/model/llama.cpp; lfm2, qwen35): Llama's input rows; in each
// layer, the architecture's own recurrent block where config.is_recurrent(layer), else Llama's
// attention block, then Llama's feed-forward block; Llama's output.
using RecurrentBlockFn = void (*)(const Model& model, ForwardScratch& scratch, const ForwardBatch& batch,
                                  int32_t layer);
void forward_hybrid(const Model& model, ForwardScratch& scratch, ops::KvPool& pool, const ForwardBatch& batch,
                    float* logits, RecurrentBlockFn recurrent_block);

// The Llama-family transformer (lib/model/llama.cpp); the other specs reuse it.
void forward_llama(const Model& model, ForwardScratch& scratch, ops::KvPool& pool, const ForwardBatch& batch,
                   float* logits);

}  // namespace slm
