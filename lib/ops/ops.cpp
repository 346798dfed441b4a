#include "lib/ops/ops.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/dequantize.hpp"
#include "kernels/gated_rms_norm.hpp"
#include "kernels/interleaved_blocks.hpp"
#include "kernels/matmul.hpp"
#include "kernels/swiglu.hpp"
#include "lib/ops/thread_pool.hpp"

namespace slm::ops {

int64_t n_interleaved_rows(const WeightMatrix& w) {
  return w.interleaved ? w.n_out / kernels::kInterleavedRows * kernels::kInterleavedRows : 0;
}

void dequantize_matrix_row(const WeightMatrix& w, int64_t row, float* out) {
  if (row < n_interleaved_rows(w)) {
    thread_local std::vector<uint8_t> bytes;
    bytes.resize(w.row_bytes);
    const int64_t tile = row / kernels::kInterleavedRows;
    kernels::deinterleave_row(w.type, w.interleaved + uint64_t(tile) * kernels::interleaved_tile_bytes(w.type, w.n_in),
                              w.n_in, int(row % kernels::kInterleavedRows), bytes.data());
    kernels::dequantize_row(w.type, bytes.data(), out, w.n_in);
    return;
  }
  kernels::dequantize_row(w.type, w.data + static_cast<uint64_t>(row) * w.row_bytes, out, w.n_in);
}

bool should_interleave(const WeightMatrix& w) {
  return kernels::interleaves(w.type) && w.n_out >= kernels::kInterleavedRows;
}

ActivationPrecision supported_activations(const WeightMatrix& w, ActivationPrecision wanted) {
  const bool int8 = wanted == ActivationPrecision::Int8 &&
                    (w.type == GgmlType::BF16 || (w.interleaved && kernels::multiplies_int8_activations(w.type)));
  return int8 ? ActivationPrecision::Int8 : ActivationPrecision::Int16;
}

uint64_t interleaved_bytes(const WeightMatrix& w) {
  return uint64_t(w.n_out / kernels::kInterleavedRows) * kernels::interleaved_tile_bytes(w.type, w.n_in);
}

namespace {

// Faults in the pages of [begin, begin + n) at once, before they are written: fresh anonymous
// pages (the loader's tiles) took about 2 us each to fault in one by one on this project's VMs
// (0.43 s of CPU for 800 MB; the host backs each anew) and 0.34 s with MADV_POPULATE_WRITE.
// Advice only: before Linux 5.14 the pages fault in as they are written.
void populate_pages(uint8_t* begin, uint64_t n) {
  const auto page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = reinterpret_cast<uintptr_t>(begin) / page * page;
  ::madvise(reinterpret_cast<void*>(first), reinterpret_cast<uintptr_t>(begin) + n - first, MADV_POPULATE_WRITE);
}

}  // namespace

void interleave_matrix(const WeightMatrix& w, uint8_t* tiles, int n_threads) {
  const int64_t n_tiles = w.n_out / kernels::kInterleavedRows;
  const uint64_t tile_bytes = kernels::interleaved_tile_bytes(w.type, w.n_in);
  const uint64_t tile_rows_bytes = kernels::kInterleavedRows * w.row_bytes;
  parallel_for(n_tiles, chunk_for(n_tiles, n_threads, 4), n_threads, [&](int64_t begin, int64_t end, int) {
    populate_pages(tiles + uint64_t(begin) * tile_bytes, uint64_t(end - begin) * tile_bytes);
    for (int64_t t = begin; t < end; ++t)
      kernels::interleave_rows(w.type, w.data + uint64_t(t) * tile_rows_bytes, w.row_bytes, w.n_in,
                               tiles + uint64_t(t) * tile_bytes);
  });
}

void copy_in_chunks(uint8_t* to, const uint8_t* from, uint64_t bytes, int n_threads,
                    const std::function<void(const uint8_t* chunk, uint64_t n)>& after_chunk) {
  constexpr uint64_t kChunk = uint64_t(1) << 20;
  const auto n_chunks = int64_t((bytes + kChunk - 1) / kChunk);
  parallel_for(n_chunks, chunk_for(n_chunks, n_threads, 4), n_threads, [&](int64_t begin, int64_t end, int) {
    for (int64_t c = begin; c < end; ++c) {
      const uint64_t first = uint64_t(c) * kChunk, n = std::min(kChunk, bytes - first);
      std::memcpy(to + first, from + first, n);
      if (after_chunk) after_chunk(from + first, n);
    }
  });
}

void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, int n_threads) {
  matmul_leading_rows(w, w.n_out, x, n_tokens, y, n_threads);
}

namespace {

int64_t n_lines(int64_t n_rows) { return (n_rows + kMatmulRowsPerLine - 1) / kMatmulRowsPerLine; }

// Threads take chunks of whole 64-byte lines of y (16 floats), so that no two threads write the
// same line. matmul_row_range computes every output the same way whatever chunk it falls in, so
// neither the thread count nor who takes which chunk changes a bit of y. A few rows of x get
// several chunks per thread, so that a late thread's share is taken by the others (each thread
// quantizes x once per loop: kernels::NamedActivations); many rows get one.
int64_t matmul_chunk(int64_t lines, int64_t n_tokens, int n_threads) {
  return chunk_for(lines, n_threads, n_tokens <= 8 ? 4 : 1);
}

}  // namespace

void matmul_leading_rows(const WeightMatrix& w, int64_t n_rows, const float* x, int64_t n_tokens, float* y,
                         int n_threads) {
  const int64_t lines = n_lines(std::min(n_rows, w.n_out));
  const uint64_t activations = kernels::new_activations_name();
  parallel_for(lines, matmul_chunk(lines, n_tokens, n_threads), n_threads, [&](int64_t begin, int64_t end, int) {
    const kernels::NamedActivations named(activations);
    matmul_row_range(w, x, n_tokens, y, begin * kMatmulRowsPerLine, end * kMatmulRowsPerLine);
  });
}

void matmuls(std::initializer_list<MatmulOutput> outputs, const float* x, int64_t n_tokens, int n_threads) {
  // The loop's items are the lines of every matrix, one after the other.
  int64_t total_lines = 0;
  for (const MatmulOutput& o : outputs) total_lines += n_lines(o.w.n_out);
  const uint64_t activations = kernels::new_activations_name();
  const auto run = [&](int64_t begin, int64_t end, int) {
    const kernels::NamedActivations named(activations);
    int64_t first_line = 0;  // of the matrix at hand
    for (const MatmulOutput& o : outputs) {
      const int64_t lines = n_lines(o.w.n_out), from = std::max(begin, first_line), to = std::min(end, first_line + lines);
      if (from < to)
        matmul_row_range(o.w, x, n_tokens, o.y, (from - first_line) * kMatmulRowsPerLine,
                         (to - first_line) * kMatmulRowsPerLine);
      first_line += lines;
    }
  };
  parallel_for(total_lines, matmul_chunk(total_lines, n_tokens, n_threads), n_threads, run);
}

void matmul_swiglu(const WeightMatrix& w_gate, const WeightMatrix& w_up, const float* x, int64_t n_tokens, float* gate,
                   float* up, int n_threads) {
  const int64_t n_ff = w_gate.n_out, lines = n_lines(n_ff);
  const uint64_t activations = kernels::new_activations_name();
  parallel_for(lines, matmul_chunk(lines, n_tokens, n_threads), n_threads, [&](int64_t begin, int64_t end, int) {
    const kernels::NamedActivations named(activations);
    const int64_t row_begin = begin * kMatmulRowsPerLine, row_end = std::min(n_ff, end * kMatmulRowsPerLine);
    matmul_row_range(w_gate, x, n_tokens, gate, row_begin, row_end);
    matmul_row_range(w_up, x, n_tokens, up, row_begin, row_end);
    for (int64_t t = 0; t < n_tokens; ++t)
      kernels::swiglu(gate + t * n_ff + row_begin, up + t * n_ff + row_begin, row_end - row_begin);
  });
}

void matmul_row_range(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, int64_t row_begin,
                      int64_t row_end) {
  static_assert(kMatmulRowsPerLine % kernels::kInterleavedRows == 0);
  row_begin = std::min(w.n_out, row_begin);
  row_end = std::min(w.n_out, row_end);
  // Lines of 16 rows are whole tiles of 8, so a range splits into interleaved tiles and rows.
  const int64_t tiles_end = std::min(row_end, n_interleaved_rows(w));
  if (row_begin < tiles_end)
    kernels::matmul_interleaved_rows(w.type, w.interleaved, w.n_in, x, n_tokens, y, w.n_out, row_begin, tiles_end,
                                     w.activations);
  const int64_t rows_begin = std::max(row_begin, tiles_end);
  if (rows_begin < row_end)
    kernels::matmul_rows(w.type, w.data, w.row_bytes, w.n_in, x, n_tokens, y, w.n_out, rows_begin, row_end,
                         w.activations);
}

void rms_norm(const float* x, const float* weight, float* y, int64_t n, float eps) {
  double sum_squares = 0.0;  // double: n is up to ~8k and this sets the scale of everything after
  for (int64_t i = 0; i < n; ++i) sum_squares += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(sum_squares / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * weight[i];
}

void rms_norm_rows(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps) {
  for (int64_t r = 0; r < n_rows; ++r) rms_norm(x + r * n, weight, y + r * n, n, eps);
}

void rms_norm_silu_gated_rows(const float* x, const float* weight, const float* z, float* y, int64_t n_rows, int64_t n,
                              float eps) {
  kernels::gated_rms_norm(x, weight, z, y, n_rows, n, eps);
}

void add_bias(float* x, const float* bias, int64_t n_tokens, int64_t n) {
  for (int64_t t = 0; t < n_tokens; ++t) add_in_place(x + t * n, bias, n);
}

void add_in_place(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void swiglu_in_place(float* gate, const float* up, int64_t n) { kernels::swiglu(gate, up, n); }

void silu_in_place(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
}

void geglu_in_place(float* gate, const float* up, int64_t n) {
  constexpr float kSqrt2OverPi = 0.79788456080286535588f, kGeluCoefficient = 0.044715f;
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    gate[i] = 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kGeluCoefficient * x * x))) * up[i];
  }
}

void take_queries(const float* fused, float* q, int64_t n_rows, int32_t n_head, int32_t head_dim) {
  for (int64_t head = 0; head < n_rows * n_head; ++head)
    std::copy_n(fused + head * 2 * head_dim, head_dim, q + head * head_dim);
}

void apply_output_gates(float* out, const float* fused, int64_t n_rows, int32_t n_head, int32_t head_dim) {
  for (int64_t head = 0; head < n_rows * n_head; ++head) {
    const float* gate = fused + head * 2 * head_dim + head_dim;
    for (int32_t i = 0; i < head_dim; ++i) out[head * head_dim + i] *= 1.0f / (1.0f + std::exp(-gate[i]));
  }
}

void scale_in_place(float* x, float scale, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= scale;
}

void soft_cap_in_place(float* x, float cap, int64_t n) {
  const float inverse = 1.0f / cap;  // as llama.cpp: scale by 1/cap, tanh, scale by cap
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i] * inverse) * cap;
}

void rope_angles(int32_t position, const ModelConfig& config, const float* freq_factors, float* cos_sin) {
  rope_angles(position, config.n_rot, config.rope_freq_base, config.rope_freq_scale, freq_factors, cos_sin);
  // Multi-section rope: the pairs of the fourth section rotate by a text token's position there, 0.
  const std::array<int32_t, 4>& sections = config.rope_sections;
  const int32_t n_sectors = sections[0] + sections[1] + sections[2] + sections[3];
  for (int32_t i = 0; n_sectors > 0 && i < config.n_rot / 2; ++i) {
    const int32_t s = i % n_sectors, kind = s % 3;
    if (s >= 3 * sections[size_t(kind)]) cos_sin[2 * i] = 1.0f, cos_sin[2 * i + 1] = 0.0f;
  }
  // rope.scaling.attn_factor (LongRoPE's mscale) scales the rotated dimensions of q and k, as
  // ggml_rope_ext's attn_factor does; 1 for most models.
  if (config.rope_attn_factor != 1.0f)
    for (int32_t i = 0; i < config.n_rot; ++i) cos_sin[i] *= config.rope_attn_factor;
}

void rope_angles(int32_t position, int32_t n_rot, float freq_base, float freq_scale, const float* freq_factors,
                 float* cos_sin) {
  // theta_i = pos * scale * base^(-2i/n_rot) / factor_i, computed in double so that long
  // positions keep their precision.
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    double theta = static_cast<double>(position) * freq_scale *
                   std::pow(static_cast<double>(freq_base), -2.0 * i / n_rot);
    if (freq_factors) theta /= freq_factors[i];
    cos_sin[2 * i] = static_cast<float>(std::cos(theta));
    cos_sin[2 * i + 1] = static_cast<float>(std::sin(theta));
  }
}

void rope_in_place(float* x, int n_heads, int head_dim, int n_rot, const float* cos_sin, RopeStyle style) {
  const int half = n_rot / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* head = x + static_cast<int64_t>(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      // Normal pairs neighbours (2i, 2i+1); NeoX pairs the two halves (i, i + n_rot/2).
      const int a = style == RopeStyle::Normal ? 2 * i : i;
      const int b = style == RopeStyle::Normal ? 2 * i + 1 : i + half;
      const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
      const float x0 = head[a], x1 = head[b];
      head[a] = x0 * c - x1 * s;
      head[b] = x0 * s + x1 * c;
    }
  }
}

}  // namespace slm::ops
