// This machine's capability for slm-plan, measured with slm's own kernels: for each weight type
// and layout, a matmul streaming 1 GiB of weights one row of activations at a time (weights
// from memory, as generation reads them) and 512-row matmuls at three row lengths and with few
// outputs (as a prompt multiplies); the fixed cost of one parallel loop; the attention kernel's rate; the
// element-wise steps'; and the gated delta rule's (hybrid models' DeltaNet layers).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kernels/matmul.hpp"
#include "kernels/quantize.hpp"
#include "lib/measure/planned_model.hpp"
#include "lib/ops/delta_net.hpp"
#include "lib/ops/kv_pool.hpp"
#include "lib/ops/ops.hpp"
#include "lib/ops/thread_pool.hpp"
#include "slm/bench.hpp"
#include "slm/plan.hpp"

namespace slm::plan {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The best of `repetitions` timings of f(), as STREAM reports (other processes only slow a run).
template <typename F>
double best_seconds(int repetitions, const F& f) {
  double best = 0;
  for (int rep = 0; rep < repetitions; ++rep) {
    const auto start = Clock::now();
    f();
    const double seconds = seconds_since(start);
    if (rep == 0 || seconds < best) best = seconds;
  }
  return best;
}

// The calibration matrices: every block size divides their rows, and they hold whole 8-row
// tiles. The streamed one is 2048 x 512; the prompt's are 4M weights each (kRateInputs long
// rows; out of the second-level cache, as a model's), and 4096 x 64, whose time is mostly the
// activations' conversion. Quantization is per block, so one buffer of 4M quantized weights
// holds each shape's rows.
constexpr int64_t kCalibrationInputs = 2048;
constexpr int64_t kCalibrationOutputs = 512;
constexpr int64_t kPromptMatrixWeights = int64_t(1) << 22;
constexpr int64_t kFewOutputs = 64;
constexpr int64_t kPromptRows = 512;
constexpr uint64_t kStreamBytes = uint64_t(1) << 30;  // well above the caches, as slm-bench's read

std::string cpu_model_name() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line))
    if (line.starts_with("model name") || line.starts_with("Model") || line.starts_with("CPU part")) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
    }
  return "unknown CPU";
}

struct AlignedBytes {
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t[], Free> bytes;
  explicit AlignedBytes(uint64_t n) : bytes(static_cast<uint8_t*>(std::aligned_alloc(64, (n + 63) / 64 * 64))) {
    if (!bytes) throw Error(fmt::format("cannot allocate {} MiB to calibrate with", n >> 20));
  }
};

// One parallel loop that does nothing: what every matmul and attention call pays on top.
double measure_loop_seconds(int32_t n_threads, bool quick) {
  const int n_loops = quick ? 2000 : 10000;
  const double seconds = best_seconds(3, [&] {
    for (int i = 0; i < n_loops; ++i) ops::parallel_for(n_threads, 1, n_threads, [](int64_t, int64_t, int) {});
  });
  return seconds / n_loops;
}

// Causal attention of 512 queries over their own keys (16 query heads over 4 KV heads of 128,
// an F16 cache): seconds per FLOP (4 * head_dim per query head and key).
double measure_attention_seconds_per_flop(int32_t n_threads, bool quick) {
  const ops::AttentionShape shape{16, 4, 128};
  const int32_t n_tokens = 512, row_size = shape.n_head_kv * shape.head_dim, q_size = shape.n_head * shape.head_dim;
  ops::KvPool pool(KvType::F16, n_tokens / ops::kKvBlockRows, 1, shape.n_head_kv, shape.head_dim);
  std::vector<int32_t> blocks;
  for (int32_t b = 0; b < pool.n_blocks; ++b) blocks.push_back(pool.allocate());
  const std::vector<float> keys = bench::normal_values(int64_t(n_tokens) * row_size, 1);
  const std::vector<float> values = bench::normal_values(int64_t(n_tokens) * row_size, 2);
  const std::vector<float> q = bench::normal_values(int64_t(n_tokens) * q_size, 3);
  std::vector<float> out(q.size());
  const ops::AttentionSpan span{0, n_tokens, 0, blocks.data()};
  ops::store_keys_and_values(pool, 0, std::span(&span, 1), keys.data(), values.data());
  const double seconds = best_seconds(quick ? 2 : 4, [&] {
    ops::attention(q.data(), pool, 0, std::span(&span, 1), shape, ops::default_attention(shape.head_dim), out.data(),
                   n_threads);
  });
  const double flops = 4.0 * shape.n_head * shape.head_dim * (double(n_tokens) * (n_tokens + 1) / 2);
  return seconds / flops;
}

// The gated delta rule of a DeltaNet layer (16 v heads over 16 q/k heads of 128, Qwen3.5's
// shape): seconds per state element and row, over a 512-row prompt from one state (held in
// cache), and for one row in each of 32 layers' states (32 MiB: read from memory, as generation).
void measure_delta_rule(MachineCapability& machine, bool quick) {
  const ops::DeltaNetShape shape{16, 16, 128};
  const int32_t n_prompt_rows = 512, n_layers = 32;
  const int64_t state_floats = shape.state_floats();
  const std::vector<float> qkv = bench::normal_values(n_prompt_rows * shape.qkv_floats(), 9);
  const std::vector<float> decay(size_t(n_prompt_rows) * shape.n_v_heads, 0.99f), beta(decay.size(), 0.5f);
  std::vector<float> out(size_t(n_prompt_rows * shape.output_floats()));
  std::vector<float> states(size_t(state_floats * n_layers), 0.0f);
  const auto run = [&](int32_t n_rows, int64_t layer) {
    const ops::AttentionSpan span{0, n_rows, 0, nullptr, states.data()};
    ops::gated_delta_rule(qkv.data(), decay.data(), beta.data(), std::span(&span, 1), layer * state_floats, shape,
                          out.data(), machine.n_threads);
  };
  machine.delta_rule_seconds_per_element =
      best_seconds(quick ? 2 : 4, [&] { run(n_prompt_rows, 0); }) / (double(n_prompt_rows) * double(state_floats));
  const double one_row = best_seconds(quick ? 3 : 8, [&] {
    for (int64_t layer = 0; layer < n_layers; ++layer) run(1, layer);
  });
  machine.delta_rule_token_seconds_per_element =
      std::max(one_row / n_layers - machine.loop_seconds, 1e-12) / double(state_floats);
}

// The serial element-wise steps over a prompt's FFN rows: seconds per element of SwiGLU, GeGLU
// and RMSNorm, each the best of a few passes over 512 rows of 4864.
void measure_elementwise(MachineCapability& machine, bool quick) {
  const int64_t n_rows = 512, width = 4864, n = n_rows * width;
  std::vector<float> gate = bench::normal_values(n, 6), up = bench::normal_values(n, 7), out(static_cast<size_t>(n));
  const std::vector<float> weight = bench::normal_values(width, 8);
  const int repetitions = quick ? 2 : 4;
  std::vector<float> scratch = gate;
  machine.swiglu_seconds_per_element = best_seconds(repetitions, [&] {
    scratch = gate;
    ops::swiglu_in_place(scratch.data(), up.data(), n);
  }) / double(n);
  machine.geglu_seconds_per_element = best_seconds(repetitions, [&] {
    scratch = gate;
    ops::geglu_in_place(scratch.data(), up.data(), n);
  }) / double(n);
  machine.norm_seconds_per_element =
      best_seconds(repetitions, [&] { ops::rms_norm_rows(gate.data(), weight.data(), out.data(), n_rows, width, 1e-6f); }) /
      double(n);
}

// An n_in x n_out matrix of `type` over the first n_in * n_out of `quantized` weights, as its
// rows or (interleaved) as its tiles.
struct CalibrationMatrix {
  ops::WeightMatrix w;
  std::vector<uint8_t> tiles;
  CalibrationMatrix(GgmlType type, bool interleaved, const std::vector<uint8_t>& quantized, int64_t n_in,
                    int64_t n_out, int32_t n_threads)
      : w{type, n_in, n_out, quantized.data(), ggml_row_bytes(type, n_in), nullptr} {
    if (!interleaved) return;
    tiles.resize(ops::interleaved_bytes(w));
    ops::interleave_matrix(w, tiles.data(), n_threads);
    w.interleaved = tiles.data();
  }
  CalibrationMatrix(const CalibrationMatrix&) = delete;
  CalibrationMatrix& operator=(const CalibrationMatrix&) = delete;
  const uint8_t* bytes() const { return w.interleaved ? w.interleaved : w.data; }
  uint64_t n_bytes() const { return w.interleaved ? tiles.size() : w.row_bytes * uint64_t(w.n_out); }
};

// kPromptMatrixWeights normal weights in `type`.
std::vector<uint8_t> quantized_weights(GgmlType type, const std::vector<float>& weights) {
  std::vector<uint8_t> quantized(ggml_row_bytes(type, kPromptMatrixWeights));
  const int64_t row = kRateInputs[0];
  for (int64_t r = 0; r < kPromptMatrixWeights / row; ++r)
    kernels::quantize_row(type, weights.data() + r * row, quantized.data() + uint64_t(r) * ggml_row_bytes(type, row), row);
  return quantized;
}

// One type in one layout. Over 512 rows: the activations' conversion per row and input from
// rows of 4096 with 1024 outputs against 64, then seconds per FLOP at each of kRateInputs from
// matrices of 4M weights less that conversion. Then seconds per byte from one-row matmuls over
// copies of a 2048 x 512 matrix filling `stream`, less the loop, conversion and FLOPs.
KernelRate measure_kernel(GgmlType type, bool interleaved, const std::vector<uint8_t>& quantized, int32_t n_threads,
                          AlignedBytes& stream, bool quick, double loop_seconds) {
  const std::vector<float> x = bench::normal_values(kRateInputs[std::size(kRateInputs) - 1] * kPromptRows, 5);
  std::vector<float> y(size_t(kPromptMatrixWeights / kRateInputs[0] * kPromptRows));
  const double rows = kPromptRows;
  // Seconds of a 512-row matmul of an n_in x n_out matrix, less its loop.
  const auto prompt_seconds = [&](int64_t n_in, int64_t n_out) {
    const CalibrationMatrix m(type, interleaved, quantized, n_in, n_out, n_threads);
    // The first pass sizes the kernels' buffers: the best of the passes leaves it out.
    return best_seconds(quick ? 2 : 3, [&] { ops::matmul(m.w, x.data(), kPromptRows, y.data(), n_threads); }) -
           loop_seconds;
  };
  KernelRate rate{type, interleaved};
  const int64_t long_inputs = kRateInputs[std::size(kRateInputs) - 1];
  const int64_t many_outputs = kPromptMatrixWeights / long_inputs;
  const double many = prompt_seconds(long_inputs, many_outputs), few = prompt_seconds(long_inputs, kFewOutputs);
  const double long_flop = std::max(many - few, 1e-9) / (rows * 2.0 * long_inputs * double(many_outputs - kFewOutputs));
  rate.seconds_per_input =
      std::max(few - rows * 2.0 * long_inputs * kFewOutputs * long_flop, 0.0) / (rows * double(long_inputs));
  for (size_t i = 0; i < std::size(kRateInputs); ++i) {
    const int64_t n_in = kRateInputs[i], n_out = kPromptMatrixWeights / n_in;
    const double seconds = n_in == long_inputs ? many : prompt_seconds(n_in, n_out);
    rate.seconds_per_flop_at[i] =
        std::max(seconds - rows * double(n_in) * rate.seconds_per_input, 1e-9) / (rows * 2.0 * double(kPromptMatrixWeights));
  }

  // Copies of the streamed matrix (its tiles, or its rows) filling the stream buffer.
  const CalibrationMatrix m(type, interleaved, quantized, kCalibrationInputs, kCalibrationOutputs, n_threads);
  const uint64_t copy_bytes = m.n_bytes(), matrix_bytes = m.w.row_bytes * uint64_t(kCalibrationOutputs);
  const int64_t n_copies = int64_t(kStreamBytes / copy_bytes);
  ops::parallel_for(n_copies, 1, n_threads, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) std::memcpy(stream.bytes.get() + uint64_t(i) * copy_bytes, m.bytes(), copy_bytes);
  });
  const double streamed = best_seconds(quick ? 2 : 3, [&] {
    for (int64_t i = 0; i < n_copies; ++i) {
      ops::WeightMatrix copy = m.w;
      (interleaved ? copy.interleaved : copy.data) = stream.bytes.get() + uint64_t(i) * copy_bytes;
      ops::matmul(copy, x.data(), 1, y.data(), n_threads);
    }
  });
  const double per_matrix = streamed / double(n_copies) - loop_seconds -
                            kCalibrationInputs * rate.seconds_per_input -
                            2.0 * kCalibrationInputs * kCalibrationOutputs * rate.seconds_per_flop(kCalibrationInputs);
  rate.seconds_per_byte = std::max(per_matrix, 1e-12) / double(matrix_bytes);
  return rate;
}

}  // namespace

MachineCapability measure_machine(int32_t n_threads, const std::vector<GgmlType>& types, bool quick) {
  const auto start = Clock::now();
  MachineCapability machine;
  machine.cpu_model = cpu_model_name();
  machine.kernels = bench::active_kernel_isa();
  machine.n_threads = n_threads > 0 ? n_threads : default_thread_count();
  machine.source = quick ? "quick probe" : "calibrated";
  machine.read_bandwidth_gbs = bench::measure_read_bandwidth(kStreamBytes, machine.n_threads, quick ? 1 : 3);
  machine.loop_seconds = measure_loop_seconds(machine.n_threads, quick);
  machine.attention_seconds_per_flop = measure_attention_seconds_per_flop(machine.n_threads, quick);
  measure_elementwise(machine, quick);
  measure_delta_rule(machine, quick);

  AlignedBytes stream(kStreamBytes);  // first written by the threads that read it (measure_kernel's copies)
  std::vector<GgmlType> measured = types;
  if (measured.empty())
    for (const GgmlTypeInfo& info : kGgmlTypes)
      if (info.weight_format && kernels::can_quantize(info.type)) measured.push_back(info.type);
  const std::vector<float> weights = bench::normal_values(kPromptMatrixWeights, 4);
  for (GgmlType type : measured) {
    const std::vector<uint8_t> quantized = quantized_weights(type, weights);
    machine.rates.push_back(measure_kernel(type, false, quantized, machine.n_threads, stream, quick, machine.loop_seconds));
    if (kernels::interleaves(type))
      machine.rates.push_back(measure_kernel(type, true, quantized, machine.n_threads, stream, quick, machine.loop_seconds));
  }
  machine.measured_seconds = seconds_since(start);
  return machine;
}

// ---- the cache file ----------------------------------------------------------------------------

std::string calibration_cache_path(int32_t n_threads) {
  const int32_t threads = n_threads > 0 ? n_threads : default_thread_count();
  std::filesystem::path dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    dir = xdg;
  else if (const char* home = std::getenv("HOME"); home && *home)
    dir = std::filesystem::path(home) / ".cache";
  else
    dir = std::filesystem::temp_directory_path();
  std::string cpu;
  for (char ch : cpu_model_name()) cpu += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return (dir / "slm" / fmt::format("plan-{}-{}-t{}.json", cpu, bench::active_kernel_isa(), threads)).string();
}

std::optional<MachineCapability> load_calibration(const std::string& cache_path, int32_t n_threads) {
  std::ifstream in(cache_path);
  if (!in) return std::nullopt;
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  try {
    MachineCapability machine;
    machine.cpu_model = j.at("cpu_model").get<std::string>();
    machine.kernels = j.at("kernels").get<std::string>();
    machine.n_threads = j.at("n_threads").get<int32_t>();
    const int32_t threads = n_threads > 0 ? n_threads : default_thread_count();
    if (machine.cpu_model != cpu_model_name() || machine.kernels != bench::active_kernel_isa() ||
        machine.n_threads != threads)
      return std::nullopt;
    machine.read_bandwidth_gbs = j.at("read_bandwidth_gbs").get<double>();
    machine.loop_seconds = j.at("loop_seconds").get<double>();
    machine.attention_seconds_per_flop = j.at("attention_seconds_per_flop").get<double>();
    machine.swiglu_seconds_per_element = j.at("swiglu_seconds_per_element").get<double>();
    machine.geglu_seconds_per_element = j.at("geglu_seconds_per_element").get<double>();
    machine.norm_seconds_per_element = j.at("norm_seconds_per_element").get<double>();
    machine.delta_rule_seconds_per_element = j.at("delta_rule_seconds_per_element").get<double>();
    machine.delta_rule_token_seconds_per_element = j.at("delta_rule_token_seconds_per_element").get<double>();
    machine.measured_seconds = j.at("measured_seconds").get<double>();
    for (const nlohmann::json& r : j.at("rates")) {
      const std::optional<GgmlType> type = ggml_type_from_name(r.at("type").get<std::string>());
      if (!type) return std::nullopt;
      KernelRate rate{*type, r.at("interleaved").get<bool>(), r.at("seconds_per_byte").get<double>()};
      const nlohmann::json& per_flop = r.at("seconds_per_flop_at");
      if (!per_flop.is_array() || per_flop.size() != std::size(kRateInputs)) return std::nullopt;
      for (size_t i = 0; i < std::size(kRateInputs); ++i) rate.seconds_per_flop_at[i] = per_flop[i].get<double>();
      rate.seconds_per_input = r.at("seconds_per_input").get<double>();
      machine.rates.push_back(rate);
    }
    machine.source = "calibrated " + cache_path;
    return machine;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // an older or damaged cache: calibrate again
  }
}

void save_calibration(const MachineCapability& machine, const std::string& cache_path) {
  nlohmann::ordered_json j = {{"cpu_model", machine.cpu_model},
                              {"kernels", machine.kernels},
                              {"n_threads", machine.n_threads},
                              {"read_bandwidth_gbs", machine.read_bandwidth_gbs},
                              {"loop_seconds", machine.loop_seconds},
                              {"attention_seconds_per_flop", machine.attention_seconds_per_flop},
                              {"swiglu_seconds_per_element", machine.swiglu_seconds_per_element},
                              {"geglu_seconds_per_element", machine.geglu_seconds_per_element},
                              {"norm_seconds_per_element", machine.norm_seconds_per_element},
                              {"delta_rule_seconds_per_element", machine.delta_rule_seconds_per_element},
                              {"delta_rule_token_seconds_per_element", machine.delta_rule_token_seconds_per_element},
                              {"measured_seconds", machine.measured_seconds},
                              {"rates", nlohmann::ordered_json::array()}};
  for (const KernelRate& r : machine.rates)
    j["rates"].push_back({{"type", ggml_type_name(r.type)},
                          {"interleaved", r.interleaved},
                          {"seconds_per_byte", r.seconds_per_byte},
                          {"seconds_per_flop_at", r.seconds_per_flop_at},
                          {"seconds_per_input", r.seconds_per_input}});
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(cache_path).parent_path(), error);
  std::ofstream out(cache_path);
  if (!out) throw Error(fmt::format("{}: cannot write the calibration: {}", cache_path, std::strerror(errno)));
  out << j.dump(2) << "\n";
  if (!out.flush()) throw Error(fmt::format("{}: cannot write the calibration", cache_path));
}

}  // namespace slm::plan
