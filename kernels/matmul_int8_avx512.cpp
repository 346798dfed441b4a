// The AVX2 Int8 kernels (matmul_int8_avx2.cpp) built again for CPUs with AVX-512 F, BW, VL and
// VNNI (AMD since Zen 4, Intel since Ice Lake), in namespace avx512: each format multiplies its
// bytes with an EVEX vpdpbusd on ymm registers (kByteDotProducts, matmul_int8_lanes_avx2.hpp),
// after a separate vpbroadcastd of the activation quad (the embedded {1to8} broadcast measured
// slower on Zen 4), where the AVX2 build takes the broadcast, a vpmaddubsw and a 16-bit add (and
// a vpmaddwd every few groups). The sums are exact int32 either way, so the bits are the same
// (tests/test_int8_kernels.cpp).
#define SLM_INTEGER_KERNELS avx512
#include "kernels/matmul_int8_avx2.cpp"
