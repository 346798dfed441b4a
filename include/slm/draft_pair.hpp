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
//     the 151,936-row head is most of the cost of a draft token.
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
};

// Writes the pair. Throws slm::Error for an unreadable input, draft_layers outside
// [1, n_layer - 1], or a tensor type that cannot be written back.
void write_draft_pair(const std::string& input_path, const std::string& target_path, const std::string& draft_path,
                      const DraftPairOptions& options);

}  // namespace slm
