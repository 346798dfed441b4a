// slm-plan's memory side: the file bound from its header, and what running it holds in memory.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "kernels/interleaved_blocks.hpp"
#include "lib/measure/planned_model.hpp"
#include "lib/model/arch.hpp"
#include "lib/model/batch_state.hpp"
#include "lib/model/model_binding.hpp"
#include "lib/ops/kv_pool.hpp"
#include "slm/plan.hpp"
#include "slm/quantize.hpp"

namespace slm::plan {

SpeedPlan predict_speed(const PlannedModel& model, const MachineCapability& machine);  // plan_speed.cpp

namespace {

constexpr int32_t kDefaultContext = 4096;  // a session's n_ctx when none is given (BatchDecoder's)

// The process before any model (code, libraries, the loop threads, the allocator's arenas) and,
// per byte of the file's header, the parsed metadata, the tokenizer's tables and the header's
// mapped pages: fitted on slm-bench's peak RSS at one generated token, less its weights, on
// Qwen2.5-0.5B (152k-token vocabulary, 69 MiB) and Gemma-3-1B's shape (32k tokens, 24 MiB).
constexpr uint64_t kProcessBytes = uint64_t(18) << 20;
// An untied model's token embedding is read a row per token from the mapped file; each page
// fault maps at least Linux's fault-around window of 64 KiB (more where the page cache holds
// the table in larger folios: interleave_weights), so a pass of n rows makes about n x 64 KiB
// of the table resident. A tied model's lookups read the output matrix's tiles.
constexpr uint64_t kFaultAroundBytes = uint64_t(64) << 10;
constexpr double kRuntimeBytesPerHeaderByte = 9.0;
// The integer kernels' per-thread buffers of quantized activations (kernels/matmul_int_avx2.hpp:
// one per block size and bit count, grown to the widest input times the rows of a pass): bytes
// per activation of an ActivationBlock, 32 int16 + scale + sum padded to 96 bytes, or 256 int16
// + scale + 8 sums padded to 576.
constexpr double kLegacyActivationBytes = 96.0 / 32;
constexpr double kKQuantActivationBytes = 576.0 / 256;

void add_matrix(PlannedModel& m, const ops::WeightMatrix& w, bool repackable, int64_t n_matrices = 1,
                int64_t used_per_token = 1, bool logit_rows_only = false) {
  if (w.n_out == 0) return;  // a slot this architecture does not use (a mixture's dense FFN)
  m.matrices.push_back({&w, n_matrices, used_per_token, repackable && ops::should_interleave(w), logit_rows_only});
}

uint64_t vector_bytes(const std::vector<float>& v) { return v.capacity() * sizeof(float); }

// What a ForwardScratch of n_rows rows allocates (lib/model/batch_state.hpp), measured on one.
uint64_t forward_scratch_bytes(const ModelConfig& config, int32_t n_rows, int n_threads) {
  const ForwardScratch s(config, n_rows, n_threads);
  uint64_t bytes = 0;
  for (const ScratchRows* v : {&s.x, &s.x_norm, &s.q, &s.k, &s.v, &s.attn, &s.block_out, &s.gate, &s.up, &s.rope,
                               &s.rope_swa, &s.recurrent})
    bytes += v->capacity() * sizeof(float);
  for (const std::vector<float>* v : {&s.moe.logits, &s.moe.x, &s.moe.gate, &s.moe.up, &s.moe.out, &s.moe.group_weight})
    bytes += vector_bytes(*v);
  bytes += s.moe.chosen.capacity() * sizeof(ops::ExpertChoice) + s.moe.group_row.capacity() * sizeof(int32_t);
  return bytes;
}

// The kernels' activation buffers: every thread quantizes a pass's rows once per matmul, into a
// buffer of the matrix type's activation format (Q4_0, Q5_0, Q8_0 and IQ4_NL share one, Q4_K has
// its own, Q5_K, Q6_K and IQ4_XS share one; the float kernels convert one row at a time).
uint64_t activation_buffer_bytes(const PlannedModel& m, int32_t n_rows, int n_threads) {
  std::map<int, std::pair<int64_t, double>> widest_input;  // format -> (widest n_in, bytes per activation)
  for (const PlannedMatrix& pm : m.matrices) {
    int format = -1;
    double bytes = kKQuantActivationBytes;
    switch (pm.w->type) {
      case GgmlType::Q4_0:
      case GgmlType::Q5_0:
      case GgmlType::Q8_0:
      case GgmlType::IQ4_NL: format = 0, bytes = kLegacyActivationBytes; break;
      case GgmlType::Q4_K: format = 1; break;
      case GgmlType::Q5_K:
      case GgmlType::Q6_K:
      case GgmlType::IQ4_XS: format = 2; break;
      default: continue;
    }
    auto& [n_in, per_activation] = widest_input[format];
    n_in = std::max(n_in, pm.w->n_in);
    per_activation = bytes;
  }
  double bytes = 0;
  for (const auto& [format, widest] : widest_input) bytes += double(n_rows) * double(widest.first) * widest.second;
  return uint64_t(bytes * n_threads);
}

uint64_t kv_pool_positions(int64_t n_positions) {
  return uint64_t((n_positions + ops::kKvBlockRows - 1) / ops::kKvBlockRows) * ops::kKvBlockRows;
}

Fit fit_of(uint64_t total, uint64_t mapped, uint64_t available) {
  if (total <= available) return Fit::Yes;
  if (total - mapped <= available) return Fit::Mmap;
  return Fit::No;
}

// The largest slm-quantize type, smaller than this file, whose weights would fit with the rest.
void suggest_smaller_quant(const PlannedModel& m, MemoryPlan& memory) {
  const uint64_t others = memory.total_bytes - memory.weights_bytes;
  const double resident_per_file_byte =
      memory.weights_file_bytes ? double(memory.weights_bytes) / double(memory.weights_file_bytes) : 1.0;
  uint64_t best_bytes = 0;
  for (const QuantizeRecipe& recipe : quantize_recipes()) {
    uint64_t file_bytes = 0;
    for (const PlannedTensor& t : plan_quantization(m.file, recipe.file_type)) file_bytes += t.n_bytes;
    if (file_bytes >= memory.weights_file_bytes) continue;
    const uint64_t total = uint64_t(double(file_bytes) * resident_per_file_byte) + others;
    if (total <= memory.available_bytes && file_bytes > best_bytes) {
      best_bytes = file_bytes;
      memory.smaller_quant = recipe.name;
      memory.smaller_quant_total_bytes = total;
    }
  }
}

MemoryPlan plan_memory(const PlannedModel& m, const PlanOptions& options) {
  const ModelConfig& c = m.config;
  MemoryPlan memory;
  memory.n_ctx_train = c.n_ctx_train;
  memory.n_ctx = options.n_ctx > 0 ? options.n_ctx : std::min(c.n_ctx_train, kDefaultContext);
  const int n_threads = options.n_threads > 0 ? options.n_threads : default_thread_count();

  std::map<GgmlType, TypeWeights> by_type;
  uint64_t anonymous = 0;  // weights on the heap: tiles and float copies
  for (const GgufTensor& t : m.file.tensors()) {
    TypeWeights& tw = by_type[t.type];
    tw.type = t.type;
    ++tw.n_tensors;
    tw.file_bytes += t.n_bytes;
    tw.resident_bytes += t.n_bytes;  // pages of the mapped file, read as stored
    memory.file_bytes = std::max(memory.file_bytes, m.file.data_offset() + t.offset + t.n_bytes);
    if (t.n_dims == 1) {  // a norm, bias or rope factor: the loader copies it to float
      tw.resident_bytes += t.n_elements() * sizeof(float);
      anonymous += t.n_elements() * sizeof(float);
    }
  }
  // An untied token embedding as rows of the mapped file: only the windows of the rows looked
  // up. A tied one is the output matrix, counted below as its tiles (or, not repacked, whole:
  // every token's logits read every row).
  const GgufTensor& embd = *m.file.find_tensor("token_embd.weight");
  const int32_t n_rows = std::min(options.n_batch, memory.n_ctx);
  if (!c.tied_output) {
    const uint64_t embedding_touched = std::min<uint64_t>(embd.n_bytes, uint64_t(n_rows) * kFaultAroundBytes);
    memory.paged_embedding_bytes = embd.n_bytes - embedding_touched;
    by_type[embd.type].resident_bytes -= memory.paged_embedding_bytes;
  }
  for (const PlannedMatrix& pm : m.matrices) {
    if (!pm.repacked) continue;  // tiles replace the rows; the file's pages of those are released
    const ops::WeightMatrix& w = *pm.w;
    const uint64_t tiles = ops::interleaved_bytes(w) * uint64_t(pm.n_matrices);  // a stack's experts: one shape
    const uint64_t replaced_rows = uint64_t(w.n_out / kernels::kInterleavedRows * kernels::kInterleavedRows) * uint64_t(pm.n_matrices);
    by_type[w.type].resident_bytes += tiles;
    by_type[w.type].resident_bytes -= replaced_rows * w.row_bytes;
    anonymous += tiles;
  }
  for (const GgmlTypeInfo& info : kGgmlTypes)
    if (const auto it = by_type.find(info.type); it != by_type.end()) {
      memory.weights_by_type.push_back(it->second);
      memory.weights_file_bytes += it->second.file_bytes;
      memory.weights_bytes += it->second.resident_bytes;
    }
  memory.mapped_weights_bytes = memory.weights_bytes - anonymous;

  memory.kv_positions = int64_t(kv_pool_positions(int64_t(memory.n_ctx) * options.n_parallel));
  // Only attention layers hold KV rows (a hybrid's recurrent layers keep a state instead).
  const uint64_t kv_per_position =
      ops::kv_bytes_per_position(options.kv_type, c.n_kv_layers(), c.n_head_kv, c.head_dim);
  memory.kv_bytes = uint64_t(memory.kv_positions) * kv_per_position;
  const uint64_t state_per_sequence = recurrent_state_layout(*find_arch(c.arch), c).bytes_per_sequence();
  if (state_per_sequence > 0) {
    const BatchDecoderOptions session;  // its checkpoint interval and count
    const int32_t checkpoints =
        std::min(session.max_checkpoints, 1 + (memory.n_ctx + session.checkpoint_interval - 1) / session.checkpoint_interval);
    memory.state_copies = 1 + checkpoints;
    memory.state_bytes = state_per_sequence * uint64_t(memory.state_copies) * uint64_t(options.n_parallel);
  }
  memory.scratch_bytes = forward_scratch_bytes(c, n_rows, n_threads) +
                         uint64_t(options.n_parallel) * uint64_t(c.n_vocab) * sizeof(float) +
                         activation_buffer_bytes(m, n_rows, n_threads);
  memory.runtime_bytes = kProcessBytes + uint64_t(double(m.file.data_offset()) * kRuntimeBytesPerHeaderByte);
  memory.total_bytes =
      memory.weights_bytes + memory.kv_bytes + memory.state_bytes + memory.scratch_bytes + memory.runtime_bytes;
  memory.available_bytes = available_memory_bytes();
  memory.fit = fit_of(memory.total_bytes, memory.mapped_weights_bytes, memory.available_bytes);

  const uint64_t without_kv = memory.total_bytes - memory.kv_bytes;
  if (memory.available_bytes > without_kv) {
    const uint64_t positions = (memory.available_bytes - without_kv) / kv_per_position;
    const uint64_t per_sequence = positions / uint64_t(options.n_parallel) / ops::kKvBlockRows * ops::kKvBlockRows;
    memory.largest_fitting_ctx = int32_t(std::min<uint64_t>(per_sequence, uint64_t(c.n_ctx_train)));
  }
  if (memory.fit == Fit::No) suggest_smaller_quant(m, memory);
  return memory;
}

}  // namespace

std::string_view fit_name(Fit fit) {
  switch (fit) {
    case Fit::Yes: return "yes";
    case Fit::Mmap: return "mmap";
    case Fit::No: return "no";
  }
  return "no";
}

uint64_t available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    std::istringstream fields(line);
    std::string key;
    uint64_t kib = 0;
    if (fields >> key >> kib && key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

PlannedModel bind_planned_model(const std::string& path) {
  PlannedModel m{GgufFile::open_header(path), {}, nullptr, {}};
  m.config = read_model_config(m.file);
  m.config.n_vocab = int32_t(m.file.get_array("tokenizer.ggml.tokens").size());
  m.weights = bind_model_weights(m.file, m.config);
  for (const ops::WeightMatrix* w : repackable_matrices(*m.weights))
    add_matrix(m, *w, true, 1, 1, w == &m.weights->output);
  for (const LayerWeights& L : m.weights->layers) {
    add_matrix(m, L.ssm_alpha, false);
    add_matrix(m, L.ssm_beta, false);
    if (!L.moe.present()) continue;
    add_matrix(m, L.moe.router, false);
    for (const std::vector<ops::WeightMatrix>* experts : {&L.moe.gate, &L.moe.up, &L.moe.down})
      add_matrix(m, experts->front(), true, int64_t(experts->size()), L.moe.n_expert_used);
  }
  return m;
}

std::vector<GgmlType> model_weight_types(const std::string& path) {
  const PlannedModel m = bind_planned_model(path);
  std::vector<GgmlType> types;
  for (const PlannedMatrix& pm : m.matrices)
    if (std::find(types.begin(), types.end(), pm.w->type) == types.end()) types.push_back(pm.w->type);
  return types;
}

Plan plan_model(const std::string& path, const PlanOptions& options, const MachineCapability* machine) {
  if (options.n_parallel < 1) throw Error(fmt::format("--parallel {} must be at least 1", options.n_parallel));
  if (options.n_ctx < 0) throw Error(fmt::format("context size {} is negative", options.n_ctx));
  if (options.n_batch < 1) throw Error(fmt::format("batch size {} must be at least 1", options.n_batch));
  const PlannedModel m = bind_planned_model(path);
  if (options.n_ctx > m.config.n_ctx_train)
    throw Error(fmt::format("{}: context size {} exceeds the model's maximum of {} ({}.context_length)", path,
                            options.n_ctx, m.config.n_ctx_train, m.config.arch));
  Plan plan;
  plan.path = path;
  plan.arch = m.config.arch;
  plan.name = m.config.name;
  for (const GgufTensor& t : m.file.tensors()) plan.n_params += t.n_elements();
  const std::optional<uint32_t> file_type = m.file.get_u32_opt("general.file_type");
  plan.file_type = file_type ? file_type_description(*file_type) : "unknown";
  plan.n_threads = options.n_threads > 0 ? options.n_threads : default_thread_count();
  plan.memory = plan_memory(m, options);
  plan.complete_file = m.file.file_size() >= plan.memory.file_bytes;
  if (machine) plan.speed = predict_speed(m, *machine);
  return plan;
}

}  // namespace slm::plan
