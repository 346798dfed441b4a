// Draft/target model pairs whose agreement is controlled, for measuring speculative decoding
// (random-weight models do not agree with one another, so a pair has to be built).
//
// From one GGUF model of n layers:
//   - the target is the model with the output projections of layers >= draft_layers
//     (attn_output and ffn_down) multiplied by residual_scale, so that those layers add only
//     small updates to the residual stream;
//   - the draft is the same embeddings, the first draft_layers layers, the same final norm and
//     output head: the target without its later layers.
// The smaller residual_scale, the closer the target's logits are to the draft's and the more
// often they agree (0: they always agree). Scaled tensors are dequantized, scaled and quantized
// again in their own type.
//
// Two more knobs:
//   - attention_scale multiplies attn_output in every layer of both: below 1, a model whose next
//     token depends mostly on its last token and little on the context, so that its greedy
//     continuation of a text is the same wherever the text appears (what an extraction-style
//     measurement of prompt lookup needs from random weights);
//   - draft_head_type writes the draft's output head (output.weight, or token_embd.weight when
//     the head is tied to it) in another type, e.g. Q4_0: in a 2-layer draft of a 1.5B model
//     the 151,936-row head is most of the cost of a draft token;
//   - frequent_vocab N and frequent_share P make the first N token ids the frequent ones, as a
//     real BPE vocabulary's are (its ids follow merge rank): a random-weight head puts its argmax
//     uniformly over the vocabulary (N / n_vocab of greedy tokens below N), real text puts
//     P of its tokens there (Qwen2.5 on wiki.test.raw: 91.0% below 32,768, 83.6% below 16,384).
//     The rows of ids >= N in the head of both models are multiplied by frequent_head_scale(N,
//     n_vocab, P), which shrinks their logits so that an argmax lands below N with probability P
//     if the logits are independent normals; the share measured on the pair comes out near it
//     (README). Only the head changes: a head tied to the embeddings gets its own output.weight
//     (same type, same bytes read per token), and the embeddings stay as they were. This is what a
//     draft head cut to N (SpeculativeOptions::draft_vocab) is measured against: a target whose
//     greedy tokens leave the cut as often as real text's do.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "slm/ggml_type.hpp"

namespace slm {

struct DraftPairOptions {
  int32_t draft_layers = 1;     // the draft keeps layers [0, draft_layers)
  float residual_scale = 0.1f;  // multiplies the later layers' attn_output and ffn_down in the target
  float attention_scale = 1.0f; // multiplies every layer's attn_output, in both
  std::optional<GgmlType> draft_head_type;  // the draft's head in this type; nullopt: as in the input
  int32_t frequent_vocab = 0;   // > 0: the ids below it are the frequent ones (see above)
  double frequent_share = 0.0;  // the share of greedy tokens they should take
};

// The factor for the head rows of ids >= n_frequent that makes the largest of n_vocab logits fall
// below n_frequent with probability `share` when the logits are independent normals of one
// deviation (a random-weight head), the other rows' logits then having `factor` times it.
// Throws slm::Error unless 1 <= n_frequent < n_vocab and 0 < share < 1.
double frequent_head_scale(int64_t n_frequent, int64_t n_vocab, double share);

// Writes the pair; returns the factor of the head rows of ids >= frequent_vocab (1 without).
// Throws slm::Error for an unreadable input, draft_layers outside [1, n_layer - 1], a tensor type
// that cannot be written back, or a frequent vocabulary frequent_head_scale refuses.
float write_draft_pair(const std::string& input_path, const std::string& target_path, const std::string& draft_path,
                      const DraftPairOptions& options);

}  // namespace slm
