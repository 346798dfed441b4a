// The kernel table each instruction set's files define, for the dispatcher in matmul.cpp.
// A table exists only where its files are compiled in (SLM_HAVE_AVX2_KERNELS,
// SLM_HAVE_AVXVNNI_KERNELS, SLM_HAVE_AVX512_KERNELS, SLM_HAVE_NEON_KERNELS); matmul.cpp
// checks the CPU before handing one out.
#pragma once

#include "kernels/attention.hpp"
#include "kernels/matmul.hpp"

namespace slm::kernels {

extern const IsaKernels kScalarKernels;  // matmul.cpp
extern const IsaKernels kAvx2Kernels;    // matmul_avx2.cpp
extern const IsaKernels kAvxVnniKernels;  // matmul_avx2.cpp: the integer kernels with AVX-VNNI
extern const IsaKernels kAvx512Kernels;   // matmul_avx2.cpp: the integer kernels with AVX-512
extern const IsaKernels kNeonKernels;    // matmul_neon.cpp

// The scalar reference, which SIMD kernels also fall back to for a type they do not decode.
namespace avx2 {
void attend_head_avx2(const AttentionHead& head);         // attention_avx2.cpp
void attend_queries_avx2(const AttentionQueries& queries);  // attention_queries_avx2.cpp
// ActivationPrecision::Int8 over the interleaved layout (matmul_int8_avx2.cpp), built again with
// vpdpbusd in namespaces avxvnni (matmul_int8_avxvnni.cpp) and avx512 (matmul_int8_avx512.cpp).
bool int8_activations(GgmlType type);
void matmul_interleaved_int8(GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens,
                             float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);
// BF16 under Int8 (kernels/matmul_bf16.hpp): rounded activations, the float kernel of BF16
// (matmul_avx2.cpp); avx512's takes vdpbf16ps where the CPU has it (matmul_bf16_avx512.cpp).
void matmul_rows_bf16_activations(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                                  int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);
}
namespace avxvnni {
bool int8_activations(GgmlType type);
void matmul_interleaved_int8(GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens,
                             float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);
}
namespace avx512 {
void attend_queries_avx512(const AttentionQueries& queries);  // attention_queries_avx512.cpp
void matmul_rows_bf16_activations(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                                  int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);
bool int8_activations(GgmlType type);
void matmul_interleaved_int8(GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens,
                             float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);
}
namespace neon {
void attend_head_neon(const AttentionHead& head);         // attention_neon.cpp
void attend_queries_neon(const AttentionQueries& queries);  // attention_neon.cpp
// A format's integer matmul with sdot (matmul_int_neon.cpp) or smmla (matmul_int_i8mm_neon.cpp),
// nullptr where the CPU lacks the instructions or the format has no integer kernel. matmul_rows
// takes smmla's where it can; the checks compare the two bit for bit.
using IntegerRowsKernel = void (*)(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                                   int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);
IntegerRowsKernel dotprod_integer_kernel(GgmlType type);
IntegerRowsKernel i8mm_integer_kernel(GgmlType type);
}

// The activation_bits of an ISA whose kernels all keep activations in float32: 0.
int float_activations_only(GgmlType type);
bool never_interleaves(GgmlType type);

void matmul_rows_scalar(GgmlType type, const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x,
                        int64_t n_tokens, float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);

}  // namespace slm::kernels
