#include "lib/ops/short_conv.hpp"

#include <algorithm>

#include "kernels/short_conv.hpp"
#include "lib/ops/thread_pool.hpp"

namespace slm::ops {

namespace {

// Each span's rows, a work item per span and slice of channels (independent, so any split of
// them among threads gives the same bits). Row t's B, C and x are at rows + t * in_stride plus
// their offsets; a negative offset: no such gate.
void conv_spans(const float* rows, int64_t in_stride, int64_t b_offset, int64_t c_offset, int64_t x_offset,
                std::span<const AttentionSpan> spans, int64_t state_offset, const float* weights, int64_t channels,
                int32_t kernel_len, float* out, int n_threads) {
  constexpr int64_t kChannelsPerItem = 256;
  const int64_t slices = (channels + kChannelsPerItem - 1) / kChannelsPerItem;
  parallel_for(int64_t(spans.size()) * slices, 1, n_threads, [&](int64_t item, int64_t, int) {
    const AttentionSpan& span = spans[size_t(item / slices)];
    const int64_t first = item % slices * kChannelsPerItem;
    const float* row = rows + int64_t(span.first_row) * in_stride + first;
    kernels::ShortConvRows r;
    r.b = b_offset < 0 ? nullptr : row + b_offset;
    r.c = c_offset < 0 ? nullptr : row + c_offset;
    r.x = row + x_offset;
    r.in_stride = in_stride;
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

}  // namespace

void gated_short_conv(const float* bcx, std::span<const AttentionSpan> spans, int64_t state_offset,
                      const float* weights, int64_t channels, int32_t kernel_len, float* out, int n_threads) {
  conv_spans(bcx, 3 * channels, 0, channels, 2 * channels, spans, state_offset, weights, channels, kernel_len, out,
             n_threads);
}

void short_conv(const float* x, std::span<const AttentionSpan> spans, int64_t state_offset, const float* weights,
                int64_t channels, int32_t kernel_len, float* out, int n_threads) {
  conv_spans(x, channels, -1, -1, 0, spans, state_offset, weights, channels, kernel_len, out, n_threads);
}

}  // namespace slm::ops
