// Products of GGML weight rows with float32 activations (the matmul under every linear
// layer), and the fp16 dot / axpy under attention over an F16 KV cache, each in one
// instruction set chosen once at run time.
//
// Accuracy: the scalar kernels (the reference) and the SIMD kernels of the float formats
// decode a weight to exactly the float dequantize_row gives it and multiply it with the
// float32 activation. Where an ISA has integer kernels (activation_bits), the activations are
// first quantized to 16-bit blocks (kernels/activation_blocks.hpp: 13 to 15 bits of magnitude,
// where llama.cpp keeps 8) and multiplied with the weights as integers.
//
// Reduction order, which is what keeps logits bit-identical whatever the batch size and
// the thread count (the integer kernels' own order: kernels/matmul_int_avx2.cpp): y[t][o] is one dot product of weight row o with token t's activations,
// accumulated in 8 float lanes (weight i goes to lane i % 8, in increasing i), then the
// lanes are summed pairwise as dot_f32 does: (0+4, 1+5, 2+6, 3+7), (0+2, 1+3), 0+1.
// No kernel splits a dot product or changes that order with the tile shape, the row range
// or the number of tokens. The scalar kernels multiply, then add (bit for bit
// dequantize_row + dot_f32); the SIMD kernels fuse each multiply-add (FMA), so two
// instruction sets differ by rounding only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "slm/activation_precision.hpp"
#include "slm/ggml_type.hpp"

namespace slm::kernels {

struct AttentionHead;
struct AttentionQueries;

// The kernel tiers. Avx2, AvxVnni and Avx512 share the AVX2 kernels of the float formats and
// attention and differ in their integer kernels (kernels/matmul_int_avx2.hpp), which give the
// same bits in all three.
enum class Isa { Scalar, Avx2, AvxVnni, Avx512, Neon };

// Every tier, in the order a test lists them.
inline constexpr Isa kAllIsas[] = {Isa::Scalar, Isa::Avx2, Isa::AvxVnni, Isa::Avx512, Isa::Neon};

// The SLM_ISA value that forces it.
constexpr const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::AvxVnni: return "avxvnni";
    case Isa::Avx512: return "avx512";
    case Isa::Neon: return "neon";
  }
  return "unknown";
}

// Compiled into this build and supported by this CPU. Scalar always is; Avx2 needs AVX2, FMA
// and F16C (and the OS saving the ymm state, XCR0); AvxVnni adds AVX-VNNI; Avx512 adds
// AVX-512 F, BW, VL and VNNI with the zmm and opmask state saved (XCR0 bits 5-7: a VM may
// list AVX-512 in CPUID without enabling it); Neon is every AArch64 CPU.
bool isa_available(Isa isa);

// What SLM_ISA (nullptr when unset) selects. Unset or empty: the best available ISA, in the
// order avx512 > avxvnni > avx2 > neon > scalar. The name of an ISA: that ISA. Throws
// std::runtime_error, with a message naming the setting and the ISAs available, when the
// ISA is not available in this build or on this CPU, or the name is none of isa_name's.
Isa choose_isa(const char* slm_isa_setting);

// choose_isa(getenv("SLM_ISA")), decided at the first call (which throws as choose_isa does,
// and so does every later call).
Isa active_isa();

// y[t * y_stride + o] = sum_i W[o][i] * x[t * n_in + i], for o in [row_begin, row_end)
// and t in [0, n_tokens). Row o of W is the ggml_row_bytes(type, n_in) bytes at
// weights + o * row_bytes. Other elements of y are not touched.
// With ActivationPrecision::Int8, BF16 weights are multiplied with the activations rounded to
// bf16 (kernels/matmul_bf16.hpp: vdpbf16ps where the CPU has AVX512_BF16); every other format's
// rows keep Int16 (their Int8 kernels read the interleaved layout: matmul_interleaved_rows).
// Throws std::invalid_argument when n_in is not a multiple of the type's block size.
void matmul_rows(GgmlType type, const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                 int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end,
                 ActivationPrecision precision = ActivationPrecision::Int16);

// The 8-row interleaved layout (kernels/interleaved_blocks.hpp), into which Model::load repacks
// the matrices of each type the active ISA multiplies faster from it.
bool interleaves(GgmlType type);

using slm::ActivationPrecision;  // include/slm/activation_precision.hpp

// Whether the active ISA has Int8 kernels for an interleaved matrix of `type`.
bool multiplies_int8_activations(GgmlType type);

// matmul_rows for a matrix repacked with interleave_rows: row o is row o % 8 of the tile at
// tiles + (o / 8) * 8 * ggml_row_bytes(type, n_in). row_begin and row_end are multiples of 8.
// Every output has the bits matmul_rows gives it from the rows as the file stores them.
// With ActivationPrecision::Int8, every output has the bits matmul_rows_int8_reference
// (kernels/matmul_int8.hpp) gives it instead.
// Throws std::invalid_argument unless interleaves(type) (and, for Int8,
// multiplies_int8_activations(type)) and n_in is a multiple of the block size.
void matmul_interleaved_rows(GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens,
                             float* y, int64_t y_stride, int64_t row_begin, int64_t row_end,
                             ActivationPrecision precision = ActivationPrecision::Int16);

// While one lives, this thread's matmul calls take x's contents to be named by `name` (from
// new_activations_name; 0: no name): the integer kernels quantize an x once per thread and name,
// not once per call, however many row ranges it is multiplied by. For a caller that splits one
// product into row ranges among its threads (ops' loops); x must not change under one name.
class NamedActivations {
 public:
  explicit NamedActivations(uint64_t name);
  ~NamedActivations();
  NamedActivations(const NamedActivations&) = delete;
  NamedActivations& operator=(const NamedActivations&) = delete;

 private:
  uint64_t outer_;
};

// A name no earlier call returned in this process.
uint64_t new_activations_name();

// sum_i fp16(a[i]) * b[i], in the lane order above.
float dot_f16_f32(const uint16_t* a, const float* b, int64_t n);

// y[i] += a * fp16(x[i])
void axpy_f16_f32(float a, const uint16_t* x, float* y, int64_t n);

// The kernels of one instruction set; the functions above call active_isa()'s.
// Tests run every available ISA through this table.
using MatmulRowsFn = void (*)(GgmlType type, const uint8_t* weights, uint64_t row_bytes, int64_t n_in,
                              const float* x, int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin,
                              int64_t row_end);
using MatmulInterleavedFn = void (*)(GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x,
                                     int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);
using MatmulBf16Fn = void (*)(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                              int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);
struct IsaKernels {
  Isa isa;
  const char* name;  // isa_name(isa)
  MatmulRowsFn matmul_rows;  // n_in already checked against the block size
  float (*dot_f16_f32)(const uint16_t* a, const float* b, int64_t n);
  void (*axpy_f16_f32)(float a, const uint16_t* x, float* y, int64_t n);
  void (*attend_head)(const AttentionHead& head);  // kernels/attention.hpp
  void (*attend_queries)(const AttentionQueries& queries);
  // The bits of magnitude of the integer blocks matmul_rows rounds the activations to for this
  // weight type (kernels/activation_blocks.hpp), or 0 where it keeps them in float32.
  int (*activation_bits)(GgmlType type);
  // Whether this ISA multiplies `type` from the interleaved layout, and how (nullptr when it
  // never does); row_begin and row_end are multiples of kInterleavedRows.
  bool (*interleaves)(GgmlType type);
  MatmulInterleavedFn matmul_interleaved;
  // The same with ActivationPrecision::Int8, for the types int8_activations names.
  bool (*int8_activations)(GgmlType type);
  MatmulInterleavedFn matmul_interleaved_int8;
  // matmul_rows of BF16 weights with ActivationPrecision::Int8 (kernels/matmul_bf16.hpp).
  MatmulBf16Fn matmul_rows_bf16_activations;
};

// The kernels of an ISA. Throws std::invalid_argument unless isa_available(isa).
const IsaKernels& kernels_for(Isa isa);

}  // namespace slm::kernels
