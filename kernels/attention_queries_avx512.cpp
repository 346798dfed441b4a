// The AVX2 grouped-query attention (attention_queries_avx2.cpp) built again for CPUs with AVX-512
// F, BW and VL, in namespace avx512: more than 8 queries are scored 16 per zmm register instead of
// 8 per ymm, and the value rows are accumulated 16 floats per zmm register, so a block takes half
// the instructions. Each query's operations are the same in either build, so both give the same
// bits (tested), whatever the batch, the chunking and the threads.
#define SLM_ATTENTION_KERNELS avx512
#define SLM_ATTEND_QUERIES attend_queries_avx512
#include "kernels/attention_queries_avx2.cpp"
