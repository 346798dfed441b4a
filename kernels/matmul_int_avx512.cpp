// The AVX2 integer kernels built again for CPUs with AVX-512 F, BW, VL and VNNI (Intel since
// Ice Lake and Sapphire Rapids servers, AMD since Zen 4), in namespace avx512:
//   - a prompt's tile holds 16 rows in zmm registers instead of 8 in ymm (TileLanes,
//     matmul_int_avx2.hpp): twice the multiply-adds per instruction, and 32 vector registers;
//   - one token's madd_add, and the 16-row prompt tile's, is one EVEX vpdpwssd (AVX512_VNNI)
//     instead of vpmaddwd + vpaddd, which is what a CPU with AVX-512 VNNI but no AVX-VNNI
//     (Zen 4) gains over the AVX2 build.
// The 16-bit activation blocks stay (kernels/activation_blocks.hpp): vpdpbusd multiplies bytes,
// and 8-bit activations would give up the accuracy slm keeps. Each lane does the AVX2 build's
// arithmetic, so the bits are the same (tested). The dispatcher (matmul.cpp) picks this build
// where CPUID says AVX-512 F/BW/VL/VNNI and XCR0 says the OS saves the zmm and opmask state.
#define SLM_INTEGER_KERNELS avx512
#include "kernels/matmul_int_avx2.cpp"
#include "kernels/matmul_interleaved_avx2.cpp"
