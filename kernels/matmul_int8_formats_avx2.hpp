// The weight formats of the AVX2 Int8 kernels (the interface: kernels/matmul_int8_avx2.hpp).
// Int8Format<kType> is specialized, with kReady = true, for each format that has both paths
// (a few tokens and the prompt tile); the others keep the Int16 kernels in Int8 mode.
#pragma once

#include "kernels/matmul_int8_avx2.hpp"
#include "slm/ggml_type.hpp"

namespace slm::kernels::avx2 {
namespace {

template <GgmlType kType>
struct Int8Format {
  static constexpr bool kReady = false;
};

}  // namespace
}  // namespace slm::kernels::avx2

// The formats, each specializing Int8Format above.
#include "kernels/matmul_int8_q4_k_avx2.hpp"
#include "kernels/matmul_int8_q6_k_avx2.hpp"
#include "kernels/matmul_int8_legacy_avx2.hpp"
