// The gated short convolution (kernels/short_conv.hpp) over a forward pass's rows, each
// sequence's rows in order from its own state.
#pragma once

#include <cstdint>
#include <span>

#include "lib/ops/kv_pool.hpp"

namespace slm::ops {

// bcx: [n_rows][3 * channels], each row's B, C and x; out: [n_rows][channels]. A span's state
// is the kernel's [kernel_len - 1][channels] at span.state + state_offset; weights are
// [kernel_len][channels], tap-major. Channels are independent, so any split of them among
// threads gives the same bits.
void gated_short_conv(const float* bcx, std::span<const AttentionSpan> spans, int64_t state_offset,
                      const float* weights, int64_t channels, int32_t kernel_len, float* out, int n_threads);

// The same convolution without gates (qwen35's DeltaNet conv): out = conv(x), x [n_rows][channels].
void short_conv(const float* x, std::span<const AttentionSpan> spans, int64_t state_offset, const float* weights,
                int64_t channels, int32_t kernel_len, float* out, int n_threads);

}  // namespace slm::ops
