// The AVX2 integer kernels built again for CPUs with AVX-VNNI (Intel since Alder Lake, AMD
// since Zen 5), where madd_add (matmul_int_avx2.hpp) is one vpdpwssd instead of a
// _mm256_madd_epi16 and an add: the same sums, so the same bits, with fewer instructions
// (one token 1.12-1.18x faster for Q4_K, Q6_K, Q5_0 and Q8_0 in bench_matmul on a Zen 5).
// The dispatcher (matmul_avx2.cpp) picks this build where CPUID says AVX-VNNI.
#define SLM_INTEGER_KERNELS avxvnni
#include "kernels/matmul_int_avx2.cpp"
#include "kernels/matmul_interleaved_avx2.cpp"
