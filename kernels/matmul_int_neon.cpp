// NEON integer kernels with the ARMv8.2 dot product instructions (sdot), for the formats
// whose weights are small integers times a scale: Q4_0, Q5_0, Q8_0, Q4_K, Q5_K and Q6_K. Used
// only where the CPU reports dotprod (HWCAP_ASIMDDP); elsewhere the float32 kernels serve them.
// Where the CPU also reports i8mm (HWCAP2_I8MM), prompts of two tokens or more take the smmla
// kernel of matmul_int_i8mm_neon.cpp, with the same bits. What each output is, and how the
// activations are rounded: kernels/matmul_int_neon.hpp. Computed for 4 rows at a time in the
// lanes of a vector, one token at a time: a prompt reads each group of 4 rows once from memory
// and then from cache for every token.
#include "kernels/matmul_int_neon.hpp"
#include "kernels/matmul_isa.hpp"

namespace slm::kernels::neon {
namespace {

template <class Format>
struct DotprodKernel {
  static void run(const uint8_t* weights, uint64_t row_bytes, int64_t n_in, const float* x, int64_t n_tokens, float* y,
                  int64_t y_stride, int64_t row_begin, int64_t row_end) {
    const SplitActivations<Format::kWeights>* xq = quantize_activations<Format::kWeights>(x, n_tokens, n_in);
    const int64_t n_blocks = n_in / Format::kWeights;
    const auto rows = [&](const uint8_t* first_row, uint64_t stride, auto store) {
      for (int64_t t = 0; t < n_tokens; ++t) store(t, dot_rows<Format>(first_row, stride, n_blocks, xq + t * n_blocks));
    };
    for_each_four_rows(weights, row_bytes, y, y_stride, row_begin, row_end, rows);
  }
};

}  // namespace

IntegerRowsKernel dotprod_integer_kernel(GgmlType type) {
  static const bool has_dotprod = cpu_has_dotprod();
  return has_dotprod ? integer_kernel_of<DotprodKernel>(type) : nullptr;
}

tiling::FormatKernel integer_kernel(GgmlType type) {
  const IntegerRowsKernel i8mm = i8mm_integer_kernel(type);
  return i8mm ? i8mm : dotprod_integer_kernel(type);
}

}  // namespace slm::kernels::neon
