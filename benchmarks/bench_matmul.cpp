// kernels::matmul_rows per instruction set and weight format, on an 896 x 4864 matrix (the
// FFN down projection of Qwen2-0.5B), for 1 token (generation), 8 (a decode step of 8 streams)
// and 64 tokens (a prompt),
// on 1 and 2 threads (rows split as ops::matmul splits them), for every ISA this CPU runs
// (scalar, avx2, avxvnni, avx512, neon). matmul_interleaved: the same matrix
// repacked into the 8-row interleaved layout, for the kernels and formats that read it.
// matmul_rows_int8: BF16 rows with ActivationPrecision::Int8 (bf16 activations; vdpbf16ps where
// the CPU has AVX512_BF16: kernels/matmul_bf16.hpp).
// bytes/s counts the weight bytes read; "flops" is 2 * rows * n_in * tokens per second; on one
// thread both are per second of that thread's CPU time, on two per second of real time.
// Generation (1 and 8 tokens) reads the weights from memory, as a model too big for the caches does: the
// benchmark cycles through copies of the matrix that together exceed the last-level cache;
// SLM_BENCH_CACHED=1 in the environment keeps one copy there instead, in the caches, so that
// a kernel's instructions show where the memory would hide them. The copies sit in 2 MiB pages
// where the kernel gives them, as a model's tiles do; SLM_BENCH_SMALL_PAGES=1 puts them in 4 KiB ones.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "kernels/interleaved_blocks.hpp"
#include "kernels/matmul.hpp"
#include "kernels/quantize.hpp"
#include "lib/ops/page_region.hpp"
#include "slm/bench.hpp"
#include "slm/ggml_type.hpp"

namespace {

using slm::GgmlType;
using slm::kernels::Isa;

constexpr int64_t kRows = 896;
constexpr int64_t kRowLength = 4864;
constexpr size_t kBytesPastCaches = size_t(128) << 20;

const GgmlType kWeightFormats[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                                   GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                                   GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS};

// The matrix in `type`, quantized once per format from the same normal weights.
const std::vector<uint8_t>& quantized_matrix(GgmlType type) {
  static std::map<GgmlType, std::vector<uint8_t>> matrices;
  auto [it, inserted] = matrices.try_emplace(type);
  if (inserted) {
    const std::vector<float> weights = slm::bench::normal_values(kRows * kRowLength, 1);
    const uint64_t row_bytes = slm::ggml_row_bytes(type, kRowLength);
    it->second.resize(row_bytes * kRows);
    for (int64_t o = 0; o < kRows; ++o)
      slm::kernels::quantize_row(type, weights.data() + o * kRowLength, it->second.data() + o * row_bytes, kRowLength);
  }
  return it->second;
}

// The matrix in the 8-row interleaved layout.
std::vector<uint8_t> interleaved_matrix(GgmlType type) {
  const std::vector<uint8_t>& rows = quantized_matrix(type);
  const uint64_t row_bytes = slm::ggml_row_bytes(type, kRowLength);
  const uint64_t tile_bytes = slm::kernels::interleaved_tile_bytes(type, kRowLength);
  std::vector<uint8_t> tiles(kRows / slm::kernels::kInterleavedRows * tile_bytes);
  for (int64_t t = 0; t < kRows / slm::kernels::kInterleavedRows; ++t)
    slm::kernels::interleave_rows(type, rows.data() + t * slm::kernels::kInterleavedRows * row_bytes, row_bytes,
                                  kRowLength, tiles.data() + t * tile_bytes);
  return tiles;
}

// The kernels a benchmark runs: the rows as the file stores them or the interleaved tiles, with
// Int16 or Int8 activations (kernels/matmul_int8.hpp; for BF16 rows kernels/matmul_bf16.hpp).
enum class Layout { Rows, Interleaved, InterleavedInt8, RowsInt8 };

void BM_Matmul(benchmark::State& state, const slm::kernels::IsaKernels* variant, GgmlType type, int64_t n_tokens,
               int n_threads, Layout layout) {
  const bool interleaved = layout == Layout::Interleaved || layout == Layout::InterleavedInt8;
  const slm::kernels::IsaKernels& kernels = *variant;
  const std::vector<uint8_t> matrix = interleaved ? interleaved_matrix(type) : quantized_matrix(type);
  const uint64_t row_bytes = slm::ggml_row_bytes(type, kRowLength);
  const std::vector<float> x = slm::bench::normal_values(n_tokens * kRowLength, 2);
  std::vector<float> y(static_cast<size_t>(n_tokens * kRows));
  const auto kernel = [&](const uint8_t* weights, int64_t row_begin, int64_t row_end) {
    switch (layout) {
      case Layout::Rows:
        return kernels.matmul_rows(type, weights, row_bytes, kRowLength, x.data(), n_tokens, y.data(), kRows, row_begin,
                                   row_end);
      case Layout::Interleaved:
        return kernels.matmul_interleaved(type, weights, kRowLength, x.data(), n_tokens, y.data(), kRows, row_begin,
                                          row_end);
      case Layout::InterleavedInt8:
        return kernels.matmul_interleaved_int8(type, weights, kRowLength, x.data(), n_tokens, y.data(), kRows,
                                               row_begin, row_end);
      case Layout::RowsInt8:
        return kernels.matmul_rows_bf16_activations(weights, row_bytes, kRowLength, x.data(), n_tokens, y.data(), kRows,
                                                    row_begin, row_end);
    }
  };
  const bool cached = std::getenv("SLM_BENCH_CACHED") != nullptr;
  const size_t n_copies = n_tokens <= 8 && !cached ? std::max<size_t>(1, kBytesPastCaches / matrix.size()) : 1;
  // In 2 MiB pages, as the model's tiles are (LoadOptions::huge_pages); SLM_BENCH_SMALL_PAGES=1: 4 KiB.
  const slm::PageRegion copies(matrix.size() * n_copies, std::getenv("SLM_BENCH_SMALL_PAGES") != nullptr
                                                             ? slm::PageSize::Small
                                                             : slm::PageSize::Huge);
  for (size_t c = 0; c < n_copies; ++c) std::memcpy(copies.data() + c * matrix.size(), matrix.data(), matrix.size());

  size_t copy = 0;
  for (auto _ : state) {
    const uint8_t* weights = copies.data() + copy * matrix.size();
    copy = (copy + 1) % n_copies;
#pragma omp parallel num_threads(n_threads)
    {
      // As ops::matmul: contiguous ranges of whole 16-row lines.
      const int64_t n_lines = kRows / 16, part = omp_get_thread_num(), n_parts = omp_get_num_threads();
      kernel(weights, part * n_lines / n_parts * 16, (part + 1) * n_lines / n_parts * 16);
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(matrix.size()));
  state.counters["flops"] = benchmark::Counter(2.0 * kRows * kRowLength * double(n_tokens),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

int register_all() {
  for (Isa isa : slm::kernels::kAllIsas) {
    if (!slm::kernels::isa_available(isa)) continue;
    const slm::kernels::IsaKernels* kernels = &slm::kernels::kernels_for(isa);
    for (Layout layout : {Layout::Rows, Layout::Interleaved, Layout::InterleavedInt8, Layout::RowsInt8})
      for (GgmlType type : kWeightFormats) {
        if (layout == Layout::Interleaved && !kernels->interleaves(type)) continue;
        if (layout == Layout::InterleavedInt8 && !(kernels->interleaves(type) && kernels->int8_activations(type))) continue;
        if (layout == Layout::RowsInt8 && type != GgmlType::BF16) continue;
        static constexpr const char* kLayoutNames[] = {"matmul_rows/", "matmul_interleaved/", "matmul_interleaved_int8/",
                                                       "matmul_rows_int8/"};
        for (int64_t n_tokens : {1, 8, 64})
          for (int n_threads : {1, 2}) {
            const std::string name = std::string(kLayoutNames[int(layout)]) +
                                     kernels->name + "/" + std::string(slm::ggml_type_name(type)) +
                                     "/tokens:" + std::to_string(n_tokens) + "/threads:" + std::to_string(n_threads);
            auto* benchmark = benchmark::RegisterBenchmark(name.c_str(), BM_Matmul, kernels, type, n_tokens, n_threads,
                                                           layout);
            if (n_threads > 1) benchmark->UseRealTime();  // one thread: its CPU time, steadier on a shared machine
          }
      }
  }
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
