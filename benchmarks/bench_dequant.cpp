// Scalar dequantize_row and quantize_row per format, on one 64 Ki-weight row of normal data.
// bytes/s counts the quantized bytes read (dequantize) or written (quantize).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "kernels/dequantize.hpp"
#include "kernels/quantize.hpp"
#include "slm/bench.hpp"
#include "slm/ggml_type.hpp"

namespace {

constexpr int64_t kRowLength = 64 * 1024;

std::vector<float> normal_row() { return slm::bench::normal_values(kRowLength, 1); }

void BM_DequantizeRow(benchmark::State& state, slm::GgmlType type) {
  const std::vector<float> x = normal_row();
  std::vector<uint8_t> bytes(slm::ggml_row_bytes(type, kRowLength));
  slm::kernels::quantize_row(type, x.data(), bytes.data(), kRowLength);
  std::vector<float> y(kRowLength);
  for (auto _ : state) {
    slm::kernels::dequantize_row(type, bytes.data(), y.data(), kRowLength);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes.size()));
}

void BM_QuantizeRow(benchmark::State& state, slm::GgmlType type) {
  const std::vector<float> x = normal_row();
  std::vector<uint8_t> bytes(slm::ggml_row_bytes(type, kRowLength));
  for (auto _ : state) {
    slm::kernels::quantize_row(type, x.data(), bytes.data(), kRowLength);
    benchmark::DoNotOptimize(bytes.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes.size()));
}

int register_all() {
  for (const auto& info : slm::kGgmlTypes) {
    const std::string name(info.name);
    benchmark::RegisterBenchmark(("dequantize_row/" + name).c_str(), BM_DequantizeRow, info.type);
    benchmark::RegisterBenchmark(("quantize_row/" + name).c_str(), BM_QuantizeRow, info.type);
  }
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
