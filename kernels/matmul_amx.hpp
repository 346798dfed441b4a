// AMX-INT8 for the AVX-512 build's prompt matmuls (matmul_amx_avx512.cpp): where the CPU has
// AMX and Linux grants the process its tile state, interleaved Q4_0 and Q5_0 weights times a
// prompt.
#pragma once

#include <cstdint>

#include "slm/ggml_type.hpp"

namespace slm::kernels::avx512 {

// CPUID says AMX-TILE and AMX-INT8, XCR0 says the OS manages the tile state, and the
// process was granted it (asked once). False where the build has no AMX.
bool amx_int8_available();

// Whether matmul_tiles_amx takes weights of this type: Q4_0 and Q5_0.
bool amx_multiplies(GgmlType type);

// matmul_interleaved for those types (the rows of whole 8-row layout tiles in
// [row_begin, row_end)), with the bits of the AVX-512 kernel. Only where amx_int8_available().
void matmul_tiles_amx(GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens, float* y,
                      int64_t y_stride, int64_t row_begin, int64_t row_end);

}  // namespace slm::kernels::avx512
