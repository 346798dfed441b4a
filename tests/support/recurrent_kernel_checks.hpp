// Checks of each instruction set's recurrent-layer kernels (short convolution, gated delta rule,
// gated RMSNorm) against their scalar references, on awkward shapes (lengths short of, equal to
// and past a vector, and not multiples of one), shared by the GoogleTest suites
// (tests/test_{short_conv,delta_rule,gated_rms_norm}_kernel.cpp) and the cross-compiled NEON
// driver that runs under qemu (tests/cross/kernel_check_main.cpp).
#pragma once

#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/delta_rule.hpp"
#include "kernels/gated_rms_norm.hpp"
#include "kernels/short_conv.hpp"
#include "support/kernel_checks.hpp"

namespace slm::kernels::checks {

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// ---------------------------------------------------------------------------
// Short convolution: every ISA gives the reference's bits (one fused multiply-add per tap).
// ---------------------------------------------------------------------------

struct ConvCase {
  int64_t channels;
  int32_t kernel_len;
  int64_t n_tokens;
  std::vector<float> bcx, weights, state;  // bcx: [n_tokens][b, c, x of `channels` each]; state: [kernel_len - 1][channels]
};

inline ConvCase random_conv_case(int64_t channels, int32_t kernel_len, int64_t n_tokens, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  ConvCase c{channels, kernel_len, n_tokens, {}, {}, {}};
  c.bcx.resize(size_t(n_tokens * 3 * channels));
  c.weights.resize(size_t(kernel_len * channels));
  c.state.resize(size_t((kernel_len - 1) * channels));
  for (auto* v : {&c.bcx, &c.weights, &c.state})
    for (float& f : *v) f = normal(rng);
  return c;
}

// Runs `kernel` over tokens [first, first + count) of the case, with its state; gated false
// leaves b and c out (qwen35's DeltaNet conv).
inline void run_conv(ShortConvFn kernel, const ConvCase& c, std::vector<float>& state, std::vector<float>& out,
                     int64_t first, int64_t count, bool gated = true) {
  ShortConvRows r;
  const float* rows = c.bcx.data() + first * 3 * c.channels;
  if (gated) r.b = rows, r.c = rows + c.channels;
  r.x = rows + 2 * c.channels, r.in_stride = 3 * c.channels;
  r.out = out.data() + first * c.channels, r.out_stride = c.channels;
  r.state = state.data(), r.weights = c.weights.data(), r.row_stride = c.channels, r.channels = c.channels;
  r.kernel_len = c.kernel_len, r.n_tokens = count;
  kernel(r);
}

inline void check_short_conv(Isa isa, CheckReport& report) {
  const ShortConvFn kernel = short_conv_kernel(isa);
  for (int64_t channels : {1, 3, 4, 7, 8, 9, 24, 261})
    for (int32_t kernel_len : {2, 3, 4, 5})
      for (bool gated : {true, false}) {
        const std::string what = std::string(isa_name(isa)) + " short_conv, " + std::to_string(channels) +
                                 " channels, L " + std::to_string(kernel_len) + (gated ? "" : ", no gates");
        const ConvCase c = random_conv_case(channels, kernel_len, 9, uint32_t(channels * 10 + kernel_len));
        std::vector<float> ref_state = c.state, ref_out(size_t(c.n_tokens * channels));
        run_conv(gated_short_conv_scalar, c, ref_state, ref_out, 0, c.n_tokens, gated);
        std::vector<float> state = c.state, out(ref_out.size(), -1.0f);
        run_conv(kernel, c, state, out, 0, 4, gated);  // 4 tokens, then 1, then the rest
        run_conv(kernel, c, state, out, 4, 1, gated);
        run_conv(kernel, c, state, out, 5, c.n_tokens - 5, gated);
        report.expect(same_bits(out, ref_out), what + ": output not bit-identical to the reference");
        report.expect(same_bits(state, ref_state), what + ": state not bit-identical to the reference");
      }
}

// ---------------------------------------------------------------------------
// Gated delta rule: within 1e-5 of the reference (the SIMD kernels fuse multiply-adds), and the
// same bits whatever the split of a run of tokens into calls.
// ---------------------------------------------------------------------------

// A head's inputs as the model gives them: q and k of unit length, v of any size, decay in (0, 1],
// beta in (0, 1); tokens laid out [n_tokens][q, k, v], gates [n_tokens][decay, beta].
struct DeltaCase {
  int32_t d_k, d_v;
  int64_t n_tokens;
  std::vector<float> qkv, gates, state;  // state: [d_v][d_k]
  int64_t stride() const { return 2 * int64_t(d_k) + d_v; }
};

inline DeltaCase random_delta_case(int32_t d_k, int32_t d_v, int64_t n_tokens, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.05f, 1.0f);
  DeltaCase c{d_k, d_v, n_tokens, {}, {}, {}};
  c.qkv.resize(size_t(n_tokens * c.stride()));
  for (float& f : c.qkv) f = normal(rng);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int part = 0; part < 2; ++part) {  // q, then k, to unit length
      float* head = c.qkv.data() + t * c.stride() + part * d_k;
      double norm = 0;
      for (int32_t i = 0; i < d_k; ++i) norm += double(head[i]) * head[i];
      for (int32_t i = 0; i < d_k; ++i) head[i] = float(head[i] / std::sqrt(norm));
    }
  c.gates.resize(size_t(2 * n_tokens));
  for (float& f : c.gates) f = unit(rng);
  c.state.resize(size_t(d_v) * size_t(d_k));
  for (float& f : c.state) f = 0.3f * normal(rng);
  return c;
}

// Runs `kernel` over tokens [first, first + count) of the case, from `state`.
inline void run_delta(DeltaRuleFn kernel, const DeltaCase& c, std::vector<float>& state, std::vector<float>& out,
                      int64_t first, int64_t count) {
  DeltaRuleRows r;
  const float* row = c.qkv.data() + first * c.stride();
  r.q = row, r.k = row + c.d_k, r.v = row + 2 * c.d_k, r.in_stride = c.stride();
  r.decay = c.gates.data() + 2 * first, r.beta = r.decay + 1, r.gate_stride = 2;
  r.out = out.data() + first * c.d_v, r.out_stride = c.d_v;
  r.state = state.data(), r.d_k = c.d_k, r.d_v = c.d_v, r.n_tokens = count;
  kernel(r);
}

// The first element further than `tolerance` from the reference, or -1.
inline int64_t first_beyond(const std::vector<float>& got, const std::vector<float>& reference, float tolerance) {
  for (size_t i = 0; i < reference.size(); ++i)
    if (!(std::fabs(got[i] - reference[i]) <= tolerance)) return int64_t(i);
  return -1;
}

inline void check_delta_rule(Isa isa, CheckReport& report) {
  const DeltaRuleFn kernel = delta_rule_kernel(isa);
  for (auto [d_k, d_v] : {std::pair{8, 8}, {8, 1}, {16, 7}, {24, 5}, {32, 32}, {128, 128}, {12, 9}, {4, 3}}) {
    const std::string what =
        std::string(isa_name(isa)) + " delta_rule, d_k " + std::to_string(d_k) + ", d_v " + std::to_string(d_v);
    const DeltaCase c = random_delta_case(d_k, d_v, 9, uint32_t(d_k * 100 + d_v));
    std::vector<float> ref_state = c.state, ref_out(size_t(c.n_tokens * d_v));
    run_delta(gated_delta_rule_scalar, c, ref_state, ref_out, 0, c.n_tokens);
    std::vector<float> whole_state = c.state, whole_out(ref_out.size());
    run_delta(kernel, c, whole_state, whole_out, 0, c.n_tokens);
    // Fused multiply-adds round once where the reference rounds twice: a few ulp of the
    // largest terms of a dot product, which stay below 1e-5 for inputs of this size.
    const int64_t bad_out = first_beyond(whole_out, ref_out, 1e-5f), bad_state = first_beyond(whole_state, ref_state, 1e-5f);
    report.expect(bad_out < 0, what + ": output " + std::to_string(bad_out) + " more than 1e-5 from the reference");
    report.expect(bad_state < 0, what + ": state " + std::to_string(bad_state) + " more than 1e-5 from the reference");
    std::vector<float> state = c.state, out(ref_out.size(), -1.0f);
    run_delta(kernel, c, state, out, 0, 4);  // 4 tokens, then 1, then the rest
    run_delta(kernel, c, state, out, 4, 1);
    run_delta(kernel, c, state, out, 5, c.n_tokens - 5);
    report.expect(same_bits(out, whole_out), what + ": a split run's output is not the bits of one call");
    report.expect(same_bits(state, whole_state), what + ": a split run's state is not the bits of one call");
  }
}

// ---------------------------------------------------------------------------
// Gated RMSNorm: within a few ulp of the reference (lane sums and a polynomial e^x).
// ---------------------------------------------------------------------------

struct NormCase {
  int64_t n_rows, n;
  std::vector<float> x, weight, z;
};

inline NormCase random_norm_case(int64_t n_rows, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  NormCase c{n_rows, n, {}, {}, {}};
  c.x.resize(size_t(n_rows * n));
  c.z.resize(size_t(n_rows * n));
  c.weight.resize(size_t(n));
  for (float& f : c.x) f = 3.0f * normal(rng);
  for (float& f : c.z) f = 4.0f * normal(rng);
  for (float& f : c.weight) f = 1.0f + 0.1f * normal(rng);
  const float tails[] = {60.0f, -60.0f, 0.0f, -90.0f};  // the sigmoid's tails, its middle, e^x's clamp
  for (size_t i = 0; i < c.z.size() && i < std::size(tails); ++i) c.z[i] = tails[i];
  return c;
}

inline void check_gated_rms_norm(Isa isa, CheckReport& report) {
  const GatedRmsNormFn kernel = gated_rms_norm_kernel(isa);
  for (int64_t n : {1, 4, 8, 13, 16, 24, 32, 128})
    for (bool in_place : {true, false}) {  // in place, as the DeltaNet layer calls it
      const std::string what = std::string(isa_name(isa)) + " gated_rms_norm, n " + std::to_string(n) +
                               (in_place ? ", in place" : "");
      const NormCase c = random_norm_case(4, n, uint32_t(n));
      std::vector<float> ref(c.x.size());
      gated_rms_norm_scalar(c.x.data(), c.weight.data(), c.z.data(), ref.data(), c.n_rows, n, 1e-6f);
      std::vector<float> x = c.x, y(c.x.size(), -1.0f);
      float* out = in_place ? x.data() : y.data();
      kernel(x.data(), c.weight.data(), c.z.data(), out, c.n_rows, n, 1e-6f);
      // A few ulp: the lane order of the double sum and the polynomial e^x (within 2 ulp of expf).
      for (size_t k = 0; k < ref.size(); ++k)
        report.expect(std::fabs(out[k] - ref[k]) <= 2e-6f * (1.0f + std::fabs(ref[k])),
                      what + ": element " + std::to_string(k) + " is " + std::to_string(out[k]) + ", the reference " +
                          std::to_string(ref[k]));
    }
}

// ---------------------------------------------------------------------------
// Across instruction sets: every SIMD kernel gives the AVX2 kernels' bits (the NEON ones do the
// same operations in the same lane order). No machine runs both, so the AVX2 outputs on fixed
// inputs are kept as hashes; the inputs are made with integer arithmetic and exact float
// conversions only, the same bits on every compiler and CPU (no multiply-add to contract).
// ---------------------------------------------------------------------------

struct PortableRandom {
  uint64_t state = 88172645463325252ull;
  uint32_t next24() {  // xorshift64
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return uint32_t(state >> 40);
  }
  float symmetric(int scale_log2) { return std::ldexp(float(int32_t(next24()) - (1 << 23)), scale_log2 - 23); }
  float in_unit_interval() { return std::ldexp(float(next24() | 1u), -24); }  // (0, 1)
  float near_one() { return std::ldexp(float((1u << 23) + (next24() >> 20)), -23); }  // [1, 1 + 2^-7)
};

inline uint64_t fnv1a(const std::vector<float>& values, uint64_t hash = 14695981039346656037ull) {
  for (float f : values)
    for (int byte = 0; byte < 4; ++byte) hash = (hash ^ ((float_bits(f) >> (8 * byte)) & 0xffu)) * 1099511628211ull;
  return hash;
}

inline uint64_t short_conv_bits(ShortConvFn kernel) {
  PortableRandom random;
  uint64_t hash = fnv1a({});
  for (int64_t channels : {8, 24, 261})
    for (int32_t kernel_len : {2, 3, 4}) {
      ConvCase c{channels, kernel_len, 9, {}, {}, {}};
      c.bcx.resize(size_t(c.n_tokens * 3 * channels)), c.weights.resize(size_t(kernel_len * channels));
      c.state.resize(size_t((kernel_len - 1) * channels));
      for (auto* v : {&c.bcx, &c.weights, &c.state})
        for (float& f : *v) f = random.symmetric(0);
      std::vector<float> out(size_t(c.n_tokens * channels));
      run_conv(kernel, c, c.state, out, 0, c.n_tokens);
      hash = fnv1a(c.state, fnv1a(out, hash));
    }
  return hash;
}

inline uint64_t delta_rule_bits(DeltaRuleFn kernel) {
  PortableRandom random;
  uint64_t hash = fnv1a({});
  for (int32_t d_k : {8, 32, 128})
    for (int32_t d_v : {1, 7, 32, 128}) {
      DeltaCase c{d_k, d_v, 9, {}, {}, {}};
      c.qkv.resize(size_t(c.n_tokens * c.stride())), c.gates.resize(size_t(2 * c.n_tokens));
      c.state.resize(size_t(d_v) * size_t(d_k));
      for (float& f : c.qkv) f = random.symmetric(-2);
      for (float& f : c.gates) f = random.in_unit_interval();
      for (float& f : c.state) f = random.symmetric(-2);
      std::vector<float> out(size_t(c.n_tokens * d_v));
      run_delta(kernel, c, c.state, out, 0, c.n_tokens);
      hash = fnv1a(c.state, fnv1a(out, hash));
    }
  return hash;
}

inline uint64_t gated_rms_norm_bits(GatedRmsNormFn kernel) {
  PortableRandom random;
  uint64_t hash = fnv1a({});
  for (int64_t n : {8, 16, 64, 128, 256}) {
    const size_t n_values = size_t(4 * n);
    std::vector<float> x(n_values), z(n_values), weight(static_cast<size_t>(n)), y(n_values);
    for (float& f : x) f = random.symmetric(2);
    for (float& f : z) f = random.symmetric(4);  // |z| < 16: both tails of the sigmoid
    for (float& f : weight) f = random.near_one();
    kernel(x.data(), weight.data(), z.data(), y.data(), 4, n, 1e-6f);
    hash = fnv1a(y, hash);
  }
  return hash;
}

// Recorded with the AVX2 kernels (x86-64); the NEON kernels give the same under qemu. A change
// to a kernel's order of operations changes its hash: change every ISA's kernel, then this.
inline constexpr uint64_t kShortConvAvx2Bits = 0x6d1317debc78cee5, kDeltaRuleAvx2Bits = 0xd57bdb5fcea6ff22,
                          kGatedRmsNormAvx2Bits = 0x4155ec854ddf4865;

inline void check_simd_kernels_give_the_avx2_bits(Isa isa, CheckReport& report) {
  if (isa == Isa::Scalar) return;
  const std::string name = isa_name(isa);
  const auto expect_bits = [&](const char* kernel, uint64_t bits, uint64_t avx2_bits) {
    char message[160];
    std::snprintf(message, sizeof message, "%s %s: outputs hash to %016llx, the AVX2 kernel's to %016llx", name.c_str(),
                  kernel, static_cast<unsigned long long>(bits), static_cast<unsigned long long>(avx2_bits));
    report.expect(bits == avx2_bits, message);
  };
  expect_bits("short_conv", short_conv_bits(short_conv_kernel(isa)), kShortConvAvx2Bits);
  expect_bits("delta_rule", delta_rule_bits(delta_rule_kernel(isa)), kDeltaRuleAvx2Bits);
  expect_bits("gated_rms_norm", gated_rms_norm_bits(gated_rms_norm_kernel(isa)), kGatedRmsNormAvx2Bits);
}

inline void check_recurrent_kernels(Isa isa, CheckReport& report) {
  check_short_conv(isa, report);
  check_delta_rule(isa, report);
  check_gated_rms_norm(isa, report);
  check_simd_kernels_give_the_avx2_bits(isa, report);
}

}  // namespace slm::kernels::checks
