// One query head attending over cached keys and values: out = softmax(scale * q.K^T) V.
// Each score, the softmax sum and each output element are reduced in an order fixed by
// n_keys and head_dim alone, so a query gives the same bits whether it was evaluated in
// a batch or on its own.
#pragma once

#include <cstdint>

namespace slm::kernels {

struct AttentionHead {
  const float* q = nullptr;        // head_dim values
  int32_t head_dim = 0;
  float scale = 1.0f;
  // Keys and values, row j at element offset j * stride: F32 or F16 (exactly one pair set).
  const float* keys_f32 = nullptr;
  const float* values_f32 = nullptr;
  const uint16_t* keys_f16 = nullptr;
  const uint16_t* values_f16 = nullptr;
  int64_t stride = 0;
  int32_t n_keys = 0;              // >= 1
  float* scores = nullptr;         // scratch of n_keys floats
  float* out = nullptr;            // head_dim values, overwritten
};

// Dispatched to active_isa()'s kernel.
void attend_head(const AttentionHead& head);

// The scalar reference: dot_f32 / dot_f16_f32 per key, softmax with std::exp and a double
// sum, then the values accumulated key by key.
void attend_head_scalar(const AttentionHead& head);

}  // namespace slm::kernels
