// The short convolution and the gated delta rule over the 8-lane Simd of matmul_tiling.hpp
// (Avx2Lanes, NeonLanes; with mul and broadcast too), for short_conv_{avx2,neon}.cpp and
// delta_rule_{avx2,neon}.cpp only: each includes it after its ISA's building blocks and is
// compiled with that ISA's flags, and the unnamed namespace gives each file its own copy.
#pragma once

#include "kernels/delta_rule.hpp"
#include "kernels/short_conv.hpp"

namespace slm::kernels {
namespace {

// Eight channels a vector, each tap one fused multiply-add in tap order: the reference's bits.
// The last channels (of a count that is not a multiple of 8) go to the reference.
template <class Simd>
void gated_short_conv_simd(const ShortConvRows& r) {
  using Vec = typename Simd::Vec;
  const int64_t S = r.row_stride;
  const int32_t last_tap = r.kernel_len - 1;
  const int64_t vector_channels = r.channels / 8 * 8;
  for (int64_t t = 0; t < r.n_tokens; ++t) {
    const float *b = r.b ? r.b + t * r.in_stride : nullptr, *c = r.c ? r.c + t * r.in_stride : nullptr;
    const float* x = r.x + t * r.in_stride;
    float* out = r.out + t * r.out_stride;
    for (int64_t ch = 0; ch < vector_channels; ch += 8) {
      const Vec y = b ? Simd::mul(Simd::load(b + ch), Simd::load(x + ch)) : Simd::load(x + ch);
      Vec sum = Simd::zero();
      for (int32_t k = 0; k < last_tap; ++k)
        sum = Simd::fma(Simd::load(r.weights + k * S + ch), Simd::load(r.state + k * S + ch), sum);
      sum = Simd::fma(Simd::load(r.weights + last_tap * S + ch), y, sum);
      for (int32_t k = 0; k + 1 < last_tap; ++k) Simd::store(r.state + k * S + ch, Simd::load(r.state + (k + 1) * S + ch));
      Simd::store(r.state + (last_tap - 1) * S + ch, y);
      Simd::store(out + ch, c ? Simd::mul(Simd::load(c + ch), sum) : sum);
    }
  }
  if (vector_channels < r.channels) gated_short_conv_scalar(channel_tail(r, vector_channels));
}

// Rows j .. j + kRows - 1 of a delta-rule state, for one token: four independent accumulators,
// and each load of k and q serves kRows rows.
template <class Simd, int kRows>
void delta_rule_rows(float* rows, int32_t d_k, const float* q, const float* k, const float* v,
                     typename Simd::Vec decay, float beta, float* out) {
  using Vec = typename Simd::Vec;
  // Decay, and S[j] . k.
  Vec sk[kRows];
  for (int r = 0; r < kRows; ++r) sk[r] = Simd::zero();
  for (int32_t i = 0; i < d_k; i += 8) {
    const Vec k8 = Simd::load(k + i);
    for (int r = 0; r < kRows; ++r) {
      float* s = rows + int64_t(r) * d_k + i;
      const Vec decayed = Simd::mul(Simd::load(s), decay);
      Simd::store(s, decayed);
      sk[r] = Simd::fma(decayed, k8, sk[r]);
    }
  }
  // The write along k, and S[j] . q.
  Vec write[kRows], sq[kRows];
  for (int r = 0; r < kRows; ++r) {
    write[r] = Simd::broadcast((v[r] - Simd::reduce(sk[r])) * beta);
    sq[r] = Simd::zero();
  }
  for (int32_t i = 0; i < d_k; i += 8) {
    const Vec k8 = Simd::load(k + i), q8 = Simd::load(q + i);
    for (int r = 0; r < kRows; ++r) {
      float* s = rows + int64_t(r) * d_k + i;
      const Vec updated = Simd::fma(write[r], k8, Simd::load(s));
      Simd::store(s, updated);
      sq[r] = Simd::fma(updated, q8, sq[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = Simd::reduce(sq[r]);
}

// Eight state columns a vector, reduced in dot_f32's order, four rows of the state at a time.
// A d_k that is not a multiple of 8 goes to the reference.
template <class Simd>
void gated_delta_rule_simd(const DeltaRuleRows& r) {
  if (r.d_k % 8 != 0) return gated_delta_rule_scalar(r);
  constexpr int kRowsAtOnce = 4;
  for (int64_t t = 0; t < r.n_tokens; ++t) {
    const float *q = r.q + t * r.in_stride, *k = r.k + t * r.in_stride, *v = r.v + t * r.in_stride;
    const typename Simd::Vec decay = Simd::broadcast(r.decay[t * r.gate_stride]);
    const float beta = r.beta[t * r.gate_stride];
    float* out = r.out + t * r.out_stride;
    int32_t j = 0;
    for (; j + kRowsAtOnce <= r.d_v; j += kRowsAtOnce)
      delta_rule_rows<Simd, kRowsAtOnce>(r.state + int64_t(j) * r.d_k, r.d_k, q, k, v + j, decay, beta, out + j);
    for (; j < r.d_v; ++j) delta_rule_rows<Simd, 1>(r.state + int64_t(j) * r.d_k, r.d_k, q, k, v + j, decay, beta, out + j);
  }
}

}  // namespace
}  // namespace slm::kernels
