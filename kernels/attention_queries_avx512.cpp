// The AVX2 grouped-query attention (attention_queries_avx2.cpp) built again for CPUs with AVX-512
// F, BW and VL, in namespace avx512: the rows of queries, keys, values and outputs are 16 floats
// per zmm register instead of 8 per ymm, so a block's dot products, value sums and F16
// conversions take half the instructions (at depth 4096 these are most of a decode step's
// attention time, with the K/V rows in cache). A score's 16 lanes are first folded to 8 (lane i +
// lane i + 8), so its bits differ from the AVX2 build's; both are tested against the scalar
// reference, and each gives the same bits whatever the batch, the chunking and the threads.
#define SLM_ATTENTION_KERNELS avx512
#define SLM_ATTEND_QUERIES attend_queries_avx512
#include "kernels/attention_queries_avx2.cpp"
