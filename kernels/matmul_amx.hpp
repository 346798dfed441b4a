// AMX-INT8 for the AVX-512 build's prompt matmuls (matmul_amx_avx512.cpp): where the CPU has
// AMX and Linux grants the process its tile state, interleaved Q4_0, Q5_0, Q8_0, Q4_K and Q6_K
// weights times a prompt.
#pragma once

#include <cstdint>

#include "slm/ggml_type.hpp"

namespace slm::kernels::avx512 {

// CPUID says AMX-TILE and AMX-INT8, XCR0 says the OS manages the tile state, the process was
// granted it (asked once), and AMX is allowed (below). False where the build has no AMX.
bool amx_int8_available();

// Whether the AMX path may run: yes unless the environment says SLM_AMX=off (read once; for a
// VM whose AMX misbehaves, or to time the AVX-512 tiles) or a test switched it off to check the
// AVX-512 tiles, which then serve every prompt, on a machine that has AMX.
void set_amx_allowed(bool allowed);

// Whether matmul_tiles_amx takes weights of this type: Q4_0, Q5_0, Q8_0, Q4_K and Q6_K.
bool amx_multiplies(GgmlType type);

// matmul_interleaved for those types (the rows of whole 8-row layout tiles in
// [row_begin, row_end)), with the bits of the AVX-512 kernel. Only where amx_int8_available().
void matmul_tiles_amx(GgmlType type, const uint8_t* tiles, int64_t n_in, const float* x, int64_t n_tokens, float* y,
                      int64_t y_stride, int64_t row_begin, int64_t row_end);

}  // namespace slm::kernels::avx512
