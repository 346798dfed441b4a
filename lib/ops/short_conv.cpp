#include "lib/ops/short_conv.hpp"

#include <algorithm>

#include "kernels/short_conv.hpp"
#include "lib/ops/thread_pool.hpp"

namespace slm::ops {

void gated_short_conv(const float* bcx, std::span<const AttentionSpan> spans, int64_t state_offset,
                      const float* weights, int64_t channels, int32_t kernel_len, float* out, int n_threads) {
  constexpr int64_t kChannelsPerItem = 256;
  const int64_t slices = (channels + kChannelsPerItem - 1) / kChannelsPerItem;
  parallel_for(int64_t(spans.size()) * slices, 1, n_threads, [&](int64_t item, int64_t, int) {
    const AttentionSpan& span = spans[size_t(item / slices)];
    const int64_t first = item % slices * kChannelsPerItem;
    const float* rows = bcx + int64_t(span.first_row) * 3 * channels + first;
    kernels::ShortConvRows r;
    r.b = rows;
    r.c = rows + channels;
    r.x = rows + 2 * channels;
    r.in_stride = 3 * channels;
    r.out = out + int64_t(span.first_row) * channels + first;
    r.out_stride = channels;
    r.state = span.state + state_offset + first;
    r.weights = weights + first;
    r.row_stride = channels;
    r.channels = std::min(kChannelsPerItem, channels - first);
    r.kernel_len = kernel_len;
    r.n_tokens = span.n_rows;
    kernels::gated_short_conv(r);
  });
}

}  // namespace slm::ops
