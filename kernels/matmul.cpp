// The run-time choice of instruction set, and the scalar kernels: the reference every
// SIMD kernel is tested against. The scalar matmul is dequantize_row followed by dot_f32,
// so it gives bit for bit what slm computed before it had SIMD kernels.
#include "kernels/matmul.hpp"

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/activation_blocks.hpp"
#include "kernels/attention.hpp"
#include "kernels/dequantize.hpp"
#include "kernels/dot.hpp"
#include "kernels/matmul_bf16.hpp"
#include "kernels/matmul_isa.hpp"
#include "kernels/quant_blocks.hpp"

#if defined(SLM_HAVE_AVX2_KERNELS)
#include <cpuid.h>
#endif

namespace slm::kernels {

int float_activations_only(GgmlType /*type*/) { return 0; }
bool never_interleaves(GgmlType /*type*/) { return false; }

// ---------------------------------------------------------------------------
// Scalar kernels
// ---------------------------------------------------------------------------

void matmul_rows_scalar(GgmlType type, const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                        int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end) {
  std::vector<float> row(static_cast<size_t>(n_in));
  for (int64_t o = row_begin; o < row_end; ++o) {
    dequantize_row(type, weights + static_cast<uint64_t>(o) * row_bytes, row.data(), n_in);
    for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + o] = dot_f32(row.data(), x + t * n_in, n_in);
  }
}

namespace {

// The halves as floats, in a per-thread buffer that only grows (attention calls this per key).
const float* halves_to_floats(const uint16_t* halves, int64_t n) {
  thread_local std::vector<float> floats;
  if (floats.size() < static_cast<size_t>(n)) floats.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) floats[static_cast<size_t>(i)] = fp16_to_fp32(halves[i]);
  return floats.data();
}

float dot_f16_f32_scalar(const uint16_t* a, const float* b, int64_t n) {
  return dot_f32(halves_to_floats(a, n), b, n);
}

void axpy_f16_f32_scalar(float a, const uint16_t* x, float* y, int64_t n) {
  axpy_f32(a, halves_to_floats(x, n), y, n);
}

void attend_queries_scalar(const AttentionQueries& queries) { attend_queries_one_by_one(queries, attend_head_scalar); }

}  // namespace

const IsaKernels kScalarKernels = {Isa::Scalar,        "scalar", matmul_rows_scalar, dot_f16_f32_scalar,   axpy_f16_f32_scalar,
                                    attend_head_scalar, attend_queries_scalar, float_activations_only,
                                    never_interleaves,  nullptr, never_interleaves, nullptr,
                                    matmul_rows_bf16_activations_scalar};

// ---------------------------------------------------------------------------
// Choosing the instruction set
// ---------------------------------------------------------------------------

#if defined(SLM_HAVE_AVX2_KERNELS)
namespace {

// CPUID itself rather than __builtin_cpu_supports, which clang 14 has no "f16c" for.
bool cpu_has_avx2_fma_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const bool fma = ecx & (1u << 12), osxsave = ecx & (1u << 27), avx = ecx & (1u << 28), f16c = ecx & (1u << 29);
  if (!(fma && osxsave && avx && f16c)) return false;
  // The OS must save the YMM registers: XCR0 bits 1 (SSE state) and 2 (AVX state).
  unsigned xcr0_low = 0, xcr0_high = 0;
  __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
  if ((xcr0_low & 6u) != 6u) return false;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  return ebx & (1u << 5);  // AVX2
}

// AVX-VNNI (the VEX-encoded vpdpwssd): CPUID leaf 7, sub-leaf 1, EAX bit 4.
bool cpu_has_avx_vnni() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 4));
}

// AVX-512 F (leaf 7 EBX bit 16), BW (30), VL (31) and VNNI (ECX bit 11), with the OS saving
// the opmask, the upper halves of zmm0-15 and zmm16-31: XCR0 bits 5, 6, 7 (and 1, 2).
bool cpu_has_avx512_vnni() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool f = ebx & (1u << 16), bw = ebx & (1u << 30), vl = ebx & (1u << 31), vnni = ecx & (1u << 11);
  if (!(f && bw && vl && vnni)) return false;
  unsigned xcr0_low = 0, xcr0_high = 0;
  __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
  return (xcr0_low & 0xe6u) == 0xe6u;
}

// AVX512_BF16 (vdpbf16ps): CPUID leaf 7, sub-leaf 1, EAX bit 5.
bool cpu_has_avx512_bf16() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 5));
}

}  // namespace
#endif

bool bf16_dot_available() {
#if defined(SLM_HAVE_AVX512BF16_KERNELS)
  return cpu_has_avx2_fma_f16c() && cpu_has_avx512_vnni() && cpu_has_avx512_bf16();
#else
  return false;
#endif
}

#if !defined(SLM_HAVE_AVX512BF16_KERNELS)
void matmul_rows_bf16_dot(const uint8_t*, uint64_t, int64_t, const float*, int64_t, float*, int64_t, int64_t, int64_t) {
  throw std::logic_error("matmul_rows_bf16_dot: this build has no AVX-512 BF16 kernels");
}
#endif

bool isa_available(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2:
#if defined(SLM_HAVE_AVX2_KERNELS)
      return cpu_has_avx2_fma_f16c();
#else
      return false;
#endif
    case Isa::AvxVnni:
#if defined(SLM_HAVE_AVXVNNI_KERNELS)
      return cpu_has_avx2_fma_f16c() && cpu_has_avx_vnni();
#else
      return false;
#endif
    case Isa::Avx512:
#if defined(SLM_HAVE_AVX512_KERNELS)
      return cpu_has_avx2_fma_f16c() && cpu_has_avx512_vnni();
#else
      return false;
#endif
    case Isa::Neon:
#if defined(SLM_HAVE_NEON_KERNELS)
      return true;  // Advanced SIMD and the fp16 conversions are baseline AArch64; no dotprod is used
#else
      return false;
#endif
  }
  return false;
}

namespace {

// The available ISAs, best first: "avx512, avxvnni, avx2, scalar".
std::string available_isa_names() {
  std::string names;
  for (Isa isa : {Isa::Avx512, Isa::AvxVnni, Isa::Avx2, Isa::Neon, Isa::Scalar})
    if (isa_available(isa)) names += std::string(names.empty() ? "" : ", ") + isa_name(isa);
  return names;
}

}  // namespace

Isa choose_isa(const char* slm_isa_setting) {
  const std::string_view setting = slm_isa_setting ? slm_isa_setting : "";
  if (setting.empty()) {
    for (Isa isa : {Isa::Avx512, Isa::AvxVnni, Isa::Avx2, Isa::Neon})
      if (isa_available(isa)) return isa;
    return Isa::Scalar;
  }
  for (Isa isa : kAllIsas) {
    if (setting != isa_name(isa)) continue;
    if (isa_available(isa)) return isa;
    throw std::runtime_error("SLM_ISA=" + std::string(setting) + ": the " + isa_name(isa) +
                             " kernels are not available in this build or on this CPU (available: " +
                             available_isa_names() + ")");
  }
  throw std::runtime_error("SLM_ISA=" + std::string(setting) +
                           " is not one of avx512, avxvnni, avx2, neon, scalar (available here: " +
                           available_isa_names() + ")");
}

Isa active_isa() {
  static const Isa chosen = choose_isa(std::getenv("SLM_ISA"));
  return chosen;
}

const IsaKernels& kernels_for(Isa isa) {
  if (!isa_available(isa))
    throw std::invalid_argument(std::string("kernels_for: ISA ") + isa_name(isa) +
                                " is not available in this build or on this CPU");
  switch (isa) {
#if defined(SLM_HAVE_AVX2_KERNELS)
    case Isa::Avx2: return kAvx2Kernels;
#endif
#if defined(SLM_HAVE_AVXVNNI_KERNELS)
    case Isa::AvxVnni: return kAvxVnniKernels;
#endif
#if defined(SLM_HAVE_AVX512_KERNELS)
    case Isa::Avx512: return kAvx512Kernels;
#endif
#if defined(SLM_HAVE_NEON_KERNELS)
    case Isa::Neon: return kNeonKernels;
#endif
    default: return kScalarKernels;
  }
}

// ---------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------

namespace {

const IsaKernels& active_kernels() {
  static const IsaKernels& kernels = kernels_for(active_isa());
  return kernels;
}

}  // namespace

void matmul_rows(GgmlType type, const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                 int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end,
                 ActivationPrecision precision) {
  check_row_length("matmul_rows", n_in, ggml_type_info(type).block_size);
  if (precision == ActivationPrecision::Int8 && type == GgmlType::BF16)
    return active_kernels().matmul_rows_bf16_activations(weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin,
                                                         row_end);
  active_kernels().matmul_rows(type, weights, row_bytes, n_in, x, n_tokens, y, y_stride, row_begin, row_end);
}

bool interleaves(GgmlType type) { return active_kernels().interleaves(type); }

bool multiplies_int8_activations(GgmlType type) {
  const IsaKernels& kernels = active_kernels();
  return kernels.interleaves(type) && kernels.int8_activations(type);
}

void matmul_interleaved_rows(GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens,
                             float* y, int64_t y_stride, int64_t row_begin, int64_t row_end,
                             ActivationPrecision precision) {
  const IsaKernels& kernels = active_kernels();
  const bool int8 = precision == ActivationPrecision::Int8;
  if (!kernels.interleaves(type) || (int8 && !kernels.int8_activations(type)))
    throw std::invalid_argument(std::string("matmul_interleaved_rows: the ") + isa_name(kernels.isa) + " kernels have no " +
                                (int8 ? "Int8 " : "") + "interleaved kernel for " + std::string(ggml_type_name(type)));
  check_row_length("matmul_interleaved_rows", n_in, ggml_type_info(type).block_size);
  (int8 ? kernels.matmul_interleaved_int8 : kernels.matmul_interleaved)(type, tiles, n_in, x, n_tokens, y, y_stride,
                                                                         row_begin, row_end);
}

float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) { return active_kernels().dot_f16_f32(a, b, n); }

void axpy_f16_f32(float a, const uint16_t* x, float* y, int64_t n) { active_kernels().axpy_f16_f32(a, x, y, n); }

void attend_head(const AttentionHead& head) { active_kernels().attend_head(head); }
void attend_queries(const AttentionQueries& queries) { active_kernels().attend_queries(queries); }

NamedActivations::NamedActivations(uint64_t name) : outer_(activations_name) { activations_name = name; }

NamedActivations::~NamedActivations() { activations_name = outer_; }

uint64_t new_activations_name() {
  static std::atomic<uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace slm::kernels
