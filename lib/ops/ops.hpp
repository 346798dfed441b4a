// The operations a transformer forward pass is made of. Ops work on plain float
// rows and weight views; the number crunching inside them is delegated to kernels/.
// Every op is deterministic: each output element is produced by one thread in an
// order that does not depend on the batch size or the thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>

#include "slm/ggml_type.hpp"
#include "slm/model.hpp"

namespace slm::ops {

// A 2-D weight matrix as stored in the file: n_out rows of n_in weights each.
struct WeightMatrix {
  GgmlType type = GgmlType::F32;
  int64_t n_in = 0;
  int64_t n_out = 0;
  const uint8_t* data = nullptr;
  uint64_t row_bytes = 0;
  // The same rows repacked for the kernels (kernels/interleaved_blocks.hpp): rows
  // [0, n_out / 8 * 8) in whole tiles of 8, the rest still read from `data`. nullptr: none.
  const uint8_t* interleaved = nullptr;
  // How the kernels round the activations: LoadOptions::activations where the active kernels
  // have Int8 for the type's interleaved tiles, and for BF16 (bf16 activations:
  // kernels/matmul_bf16.hpp); the rows of other formats read from `data` always keep Int16.
  ActivationPrecision activations = ActivationPrecision::Int16;
};

// The rows of w read from its interleaved tiles: n_out / 8 * 8, or 0 when it has none.
int64_t n_interleaved_rows(const WeightMatrix& w);

// Whether the active kernels multiply w faster once it is repacked with interleave_rows.
bool should_interleave(const WeightMatrix& w);

// The precision w can be multiplied with when `wanted` is asked for: Int8 where w has tiles and
// the active kernels have Int8 for its type, or w is BF16; else Int16.
ActivationPrecision supported_activations(const WeightMatrix& w, ActivationPrecision wanted);

// The bytes of w's interleaved tiles of rows [0, n_out / 8 * 8).
uint64_t interleaved_bytes(const WeightMatrix& w);

// Writes w's interleaved tiles to `tiles` (interleaved_bytes(w) bytes), the tiles divided
// among n_threads threads.
void interleave_matrix(const WeightMatrix& w, uint8_t* tiles, int n_threads);

// Copies `bytes` in 1 MiB chunks divided among n_threads threads; after_chunk(first, n), when
// given, runs on each chunk's source right after it is copied (e.g. to unmap it).
void copy_in_chunks(uint8_t* to, const uint8_t* from, uint64_t bytes, int n_threads,
                    const std::function<void(const uint8_t* chunk, uint64_t n)>& after_chunk = {});

// y[t][o] = sum_i w[o][i] * x[t][i] for n_tokens rows of x; y is [n_tokens][w.n_out].
void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, int n_threads);
// matmul's outputs o below n_rows rounded up to whole lines of kMatmulRowsPerLine (and clamped to
// w.n_out) only, with the bits matmul gives them; y is still [n_tokens][w.n_out] and its other
// outputs are not touched (a draft's head cut to its most frequent tokens, slm/speculative.hpp).
void matmul_leading_rows(const WeightMatrix& w, int64_t n_rows, const float* x, int64_t n_tokens, float* y,
                         int n_threads);

// One product of matmuls: y = w x.
struct MatmulOutput {
  const WeightMatrix& w;
  float* y;
};

// matmul of one x by each of several matrices (a layer's q, k and v projections) in one parallel
// loop over the lines of all of them, so that no thread waits for the others between them. Each
// output has the bits matmul gives it.
void matmuls(std::initializer_list<MatmulOutput> outputs, const float* x, int64_t n_tokens, int n_threads);

// gate = silu(w_gate x) * (w_up x), SwiGLU's first half, in one parallel loop: each thread takes
// lines of both matrices and their SwiGLU, so no thread waits for another between the three.
// up is scratch of gate's shape ([n_tokens][w_gate.n_out]). Each output has the bits of matmul,
// matmul and swiglu_in_place.
void matmul_swiglu(const WeightMatrix& w_gate, const WeightMatrix& w_up, const float* x, int64_t n_tokens, float* gate,
                   float* up, int n_threads);

// matmul's threads each take whole lines of this many rows, so that no two write one 64-byte line of y.
inline constexpr int64_t kMatmulRowsPerLine = 16;

// matmul's outputs o in [row_begin, row_end) (clamped to w.n_out), on the calling thread, for a
// caller that divides the rows of several matrices among its own threads. row_begin is a multiple
// of kMatmulRowsPerLine. Each output has the bits matmul gives it.
void matmul_row_range(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, int64_t row_begin,
                      int64_t row_end);

// Row `row` of a matrix (an embedding lookup), as floats.
void dequantize_matrix_row(const WeightMatrix& w, int64_t row, float* out);

// y = x / sqrt(mean(x^2) + eps) * weight, for one row of n values.
void rms_norm(const float* x, const float* weight, float* y, int64_t n, float eps);
// The same for each of n_rows rows of n values (y may be x).
void rms_norm_rows(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps);

// y = rms_norm(x) * weight * silu(z), for each of n_rows rows of n values (y may be x): the output
// norm of a Gated DeltaNet head, gated by its z projection.
void rms_norm_silu_gated_rows(const float* x, const float* weight, const float* z, float* y, int64_t n_rows, int64_t n,
                              float eps);

// x[t][i] += b[i]
void add_bias(float* x, const float* bias, int64_t n_tokens, int64_t n);

// x[i] += y[i]
void add_in_place(float* x, const float* y, int64_t n);

// gate[i] = silu(gate[i]) * up[i] (kernels/swiglu.hpp: each value's bits depend on its inputs alone)
void swiglu_in_place(float* gate, const float* up, int64_t n);

// x[i] = silu(x[i]) = x[i] / (1 + exp(-x[i]))
void silu_in_place(float* x, int64_t n);

// gate[i] = gelu(gate[i]) * up[i], GELU's tanh approximation (Gemma's GeGLU)
void geglu_in_place(float* gate, const float* up, int64_t n);

// Gated attention (qwen35): `fused` is [n_rows][n_head][2][head_dim], each head's query and then
// its output gate, as one projection gives them. q gets the queries ([n_rows][n_head * head_dim]).
void take_queries(const float* fused, float* q, int64_t n_rows, int32_t n_head, int32_t head_dim);
// out (the attention output, as q) times sigmoid of the gates, value by value.
void apply_output_gates(float* out, const float* fused, int64_t n_rows, int32_t n_head, int32_t head_dim);

// x[i] *= scale
void scale_in_place(float* x, float scale, int64_t n);

// x[i] = cap * tanh(x[i] / cap): logits bounded to (-cap, cap) (Gemma's soft-capping)
void soft_cap_in_place(float* x, float cap, int64_t n);

// Rotation angles for one position: cos_sin[2*i], cos_sin[2*i+1] for i < n_rot/2, with the
// model's rope base and scale, times its rope_attn_factor.
void rope_angles(int32_t position, const ModelConfig& config, const float* freq_factors, float* cos_sin);
// The same with another base and scale (e.g. Gemma 3's local layers).
void rope_angles(int32_t position, int32_t n_rot, float freq_base, float freq_scale, const float* freq_factors,
                 float* cos_sin);

// Rotates the first n_rot dimensions of each of n_heads heads of x (head-major).
void rope_in_place(float* x, int n_heads, int head_dim, int n_rot, const float* cos_sin, RopeStyle style);

}  // namespace slm::ops
