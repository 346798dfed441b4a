// Planning before running (slm-plan): what a model file needs in memory on this machine and how
// fast slm will run it, from the file's header and tensor table alone, so that a file still
// downloading can be judged.
//
// Memory is what slm itself allocates: the weights as loading keeps them (Model::load repacks
// most matrices, a mixture's experts included, into 8-row tiles held on the heap and releases
// the file's pages of them; other matrices are read from the mapped file; vectors are copied to
// float), the KV block pool at n_ctx x n_parallel positions, a hybrid model's recurrent state
// and its checkpoints, the forward pass's scratch rows
// and the process's own runtime. Speed is the time each matmul, attention and loop takes at the
// rates measured on this machine with slm's own kernels (calibrate_machine), summed over one
// token for tg128 and over 512 tokens for pp512.
#pragma once

#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slm/ggml_type.hpp"
#include "slm/session.hpp"

namespace slm::plan {

struct PlanOptions {
  int32_t n_ctx = 0;       // positions per sequence; 0: min(training context, 4096), as a session
  int32_t n_parallel = 1;  // sequences held at once (slm-server --parallel)
  KvType kv_type = KvType::F16;
  int32_t n_batch = 512;   // rows of one forward pass at most (the scratch is sized for them)
  int32_t n_threads = 0;   // 0: the number of physical cores
};

// One weight type's tensors.
struct TypeWeights {
  GgmlType type = GgmlType::F32;
  int32_t n_tensors = 0;
  uint64_t file_bytes = 0;      // as the file stores them
  uint64_t resident_bytes = 0;  // as loading keeps them in memory
};

enum class Fit { Yes, Mmap, No };
std::string_view fit_name(Fit fit);  // "yes", "mmap", "no"

struct MemoryPlan {
  std::vector<TypeWeights> weights_by_type;  // in the order of kGgmlTypes
  uint64_t file_bytes = 0;          // the whole file, header and data (the header's own tensor table says)
  uint64_t weights_file_bytes = 0;  // every tensor as stored
  uint64_t weights_bytes = 0;       // every weight as loading keeps it (resident_bytes summed)
  uint64_t mapped_weights_bytes = 0;  // of weights_bytes, pages of the mapped file (the OS may drop and re-read them)
  // An untied token embedding is read a row per token from the mapped file: the part one pass
  // of n_batch rows does not touch (Linux maps at least 64 KiB around each row read) is not
  // counted. 0 for a tied one, whose lookups read the output matrix's tiles.
  uint64_t paged_embedding_bytes = 0;
  int64_t kv_positions = 0;         // n_ctx x n_parallel, rounded up to whole blocks
  uint64_t kv_bytes = 0;
  // A hybrid model's recurrent layers: each sequence's state, and the checkpoints a prompt of
  // n_ctx positions leaves (one before it and one every checkpoint interval to its end, at most
  // the session's maximum; every turn's end adds one, up to that maximum).
  int32_t state_copies = 0;          // per sequence: the state and its checkpoints
  uint64_t state_bytes = 0;
  uint64_t scratch_bytes = 0;       // forward-pass rows, logits, the kernels' activation buffers
  uint64_t runtime_bytes = 0;       // the process: code, libraries, threads, tokenizer, metadata
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;     // MemAvailable of /proc/meminfo
  Fit fit = Fit::No;
  int32_t n_ctx = 0;                // the context planned for
  int32_t n_ctx_train = 0;
  int32_t largest_fitting_ctx = 0;  // at n_parallel sequences, in whole KV blocks; 0: none fits
  std::string smaller_quant;        // when nothing fits: the largest slm-quantize type whose file would
  uint64_t smaller_quant_total_bytes = 0;  // fit, and its total; empty when none would
};

// A kernel's cost on this machine: a matmul of `bytes` weights, n_in inputs and `flops` per row
// over n rows takes
//   bytes * seconds_per_byte + n * (n_in * seconds_per_input + flops * seconds_per_flop(n_in))
// (one parallel loop's fixed cost apart). seconds_per_byte is measured at one row (weights
// streamed from memory); the rest at 512 rows. seconds_per_input is the activations'
// conversion every call makes (each thread converts all of x for the integer kernels, so it is
// not shared out). The arithmetic rate depends on the row length: a prompt tile's activations
// fit the first-level cache for short rows and not for long ones (measured at 1024, 2048 and
// 4096 inputs, the Q8_0 rate differed by 1.3x between 896 and 2048).
inline constexpr int64_t kRateInputs[] = {1024, 2048, 4096};
struct KernelRate {
  GgmlType type = GgmlType::F32;
  bool interleaved = false;  // the 8-row tiles Model::load repacks into, or the rows as stored
  double seconds_per_byte = 0;
  double seconds_per_flop_at[std::size(kRateInputs)] = {};  // at rows of kRateInputs inputs
  double seconds_per_input = 0;

  // Piecewise linear in log2(n_in) between the measured lengths, the nearest one outside them.
  double seconds_per_flop(int64_t n_in) const;
};

struct MachineCapability {
  std::string cpu_model;       // /proc/cpuinfo's model name
  std::string kernels;         // slm::bench::active_kernel_isa()
  int32_t n_threads = 0;
  double read_bandwidth_gbs = 0;
  double loop_seconds = 0;     // one parallel loop's fixed cost (dispatch and join)
  double attention_seconds_per_flop = 0;
  // The element-wise steps a forward pass runs on the calling thread alone, per element: SwiGLU
  // (an exp), GeGLU (a tanh), and RMSNorm (the norms; adds, biases and rope cost about the same).
  double swiglu_seconds_per_element = 0;
  double geglu_seconds_per_element = 0;
  double norm_seconds_per_element = 0;
  // A DeltaNet layer's gated delta rule (kernels/delta_rule.hpp), per element of a sequence's
  // state and row: over a prompt's rows (the state in cache), and for one row (from memory).
  double delta_rule_seconds_per_element = 0;
  double delta_rule_token_seconds_per_element = 0;
  std::vector<KernelRate> rates;
  std::string source;          // "calibrated <file>" or "quick probe"
  double measured_seconds = 0;  // how long the measurement took

  const KernelRate* rate(GgmlType type, bool interleaved) const;
};

struct SpeedPlan {
  double pp512_tokens_per_second = 0;
  double tg128_tokens_per_second = 0;
  uint64_t tg_bytes_per_token = 0;  // weights one generated token reads
  double tg_flops_per_token = 0;
  double pp_flops_per_token = 0;    // pp512's, attention included
};

struct Plan {
  std::string path;
  std::string arch;
  std::string name;
  uint64_t n_params = 0;
  std::string file_type;  // llama.cpp's description of general.file_type ("Q4_K - Medium")
  bool complete_file = true;  // false: the data section is still missing or cut short
  int32_t n_threads = 0;
  MemoryPlan memory;
  std::optional<SpeedPlan> speed;  // without a machine capability: none
};

// Reads `path`'s header and tensor table (GgufFile::open_header: the data may be missing) and
// binds its weights with the loader's checks; throws slm::Error with the loader's message for a
// bad file. `machine` may be nullptr (no speed prediction).
Plan plan_model(const std::string& path, const PlanOptions& options, const MachineCapability* machine);

// Bytes of available memory (MemAvailable), 0 when /proc/meminfo cannot be read.
uint64_t available_memory_bytes();

// ---- this machine's capability -------------------------------------------------------------

// Measures the kernels of `types` (every weight type when empty) on n_threads threads with
// slm's own matmul, both layouts of a type that Model::load repacks; `quick` uses fewer, shorter
// passes (about a second for a model's four types), the full run takes under 20 s.
MachineCapability measure_machine(int32_t n_threads, const std::vector<GgmlType>& types, bool quick);

// The weight types `path`'s tensors use (for a quick probe).
std::vector<GgmlType> model_weight_types(const std::string& path);

// $XDG_CACHE_HOME/slm (else ~/.cache/slm)/plan-<cpu>-<kernels>-t<threads>.json.
std::string calibration_cache_path(int32_t n_threads);
// nullopt when the file is missing or not a calibration of this CPU, kernels and thread count.
std::optional<MachineCapability> load_calibration(const std::string& cache_path, int32_t n_threads);
// Writes it (creating the directory); throws slm::Error when it cannot.
void save_calibration(const MachineCapability& machine, const std::string& cache_path);

}  // namespace slm::plan
