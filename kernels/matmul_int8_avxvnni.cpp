// The AVX2 Int8 kernels (matmul_int8_avx2.cpp) built again for CPUs with AVX-VNNI (Intel since
// Alder Lake, AMD since Zen 5), in namespace avxvnni: each format multiplies its bytes with the
// VEX vpdpbusd (kByteDotProducts, matmul_int8_lanes_avx2.hpp). The same source as the AVX-512
// build's (matmul_int8_avx512.cpp), the same exact int32 sums, so the same bits.
#define SLM_INTEGER_KERNELS avxvnni
#include "kernels/matmul_int8_avx2.cpp"
