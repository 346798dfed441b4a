// slm-plan: will a model file fit on this machine, and how fast will slm run it? Reads only the
// GGUF header and tensor table (a file still downloading will do), prints the memory slm would
// hold (weights by type, KV cache, scratch, runtime) against the available memory with a
// verdict, and predicts pp512 and tg128 from this machine's measured kernel rates
// (--calibrate stores them; otherwise a quick probe of the file's types). The planning is in the
// library (include/slm/plan.hpp).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

#include "common/cli.hpp"
#include "common/markdown_table.hpp"
#include "common/tool_main.hpp"
#include "slm/plan.hpp"

namespace {

using Json = nlohmann::ordered_json;
namespace plan = slm::plan;

struct Options {
  std::vector<std::string> models;
  plan::PlanOptions plan;
  std::string kv_type = "f16";
  bool json = false;
  bool compare = false;
  bool calibrate = false;
  bool memory_only = false;
};

std::string mib(uint64_t bytes) { return fmt::format("{:.1f} MiB", double(bytes) / 1048576.0); }

std::string human(uint64_t bytes) {
  return bytes >= (uint64_t(1) << 30) ? fmt::format("{:.2f} GiB", double(bytes) / 1073741824.0) : mib(bytes);
}

std::string params_text(uint64_t n) {
  return n < 1000000000 ? fmt::format("{:.0f}M", double(n) / 1e6) : fmt::format("{:.2f}B", double(n) / 1e9);
}

// The capability the predictions use: --calibrate's (measured now and stored), the stored one,
// or a quick probe of the types these files use.
std::optional<plan::MachineCapability> machine_capability(const Options& o) {
  const std::string cache = plan::calibration_cache_path(o.plan.n_threads);
  if (o.calibrate) {
    plan::MachineCapability machine = plan::measure_machine(o.plan.n_threads, {}, false);
    plan::save_calibration(machine, cache);
    machine.source = "calibrated " + cache;
    return machine;
  }
  if (o.memory_only) return std::nullopt;
  std::vector<slm::GgmlType> types;
  for (const std::string& path : o.models)
    for (slm::GgmlType type : plan::model_weight_types(path))
      if (std::find(types.begin(), types.end(), type) == types.end()) types.push_back(type);
  if (std::optional<plan::MachineCapability> stored = plan::load_calibration(cache, o.plan.n_threads)) {
    const bool covers = std::all_of(types.begin(), types.end(), [&](slm::GgmlType t) { return stored->rate(t, false); });
    if (covers) return stored;
  }
  return plan::measure_machine(o.plan.n_threads, types, true);
}

Json plan_json(const plan::Plan& p, const Options& o, const plan::MachineCapability* machine) {
  const plan::MemoryPlan& m = p.memory;
  Json by_type = Json::array();
  for (const plan::TypeWeights& t : m.weights_by_type)
    by_type.push_back({{"type", slm::ggml_type_name(t.type)},
                       {"n_tensors", t.n_tensors},
                       {"file_bytes", t.file_bytes},
                       {"resident_bytes", t.resident_bytes}});
  Json j = {{"model_filename", p.path}, {"arch", p.arch},        {"name", p.name},
            {"n_params", p.n_params},   {"file_type", p.file_type}, {"complete_file", p.complete_file},
            {"n_ctx", m.n_ctx},         {"n_parallel", o.plan.n_parallel}, {"kv_type", o.kv_type},
            {"n_threads", p.n_threads}};
  j["memory"] = {{"weights_bytes", m.weights_bytes},
                 {"weights_file_bytes", m.weights_file_bytes},
                 {"weights_by_type", by_type},
                 {"mapped_weights_bytes", m.mapped_weights_bytes},
                 {"paged_embedding_bytes", m.paged_embedding_bytes},
                 {"kv_positions", m.kv_positions},
                 {"kv_bytes", m.kv_bytes},
                 {"state_bytes", m.state_bytes},
                 {"scratch_bytes", m.scratch_bytes},
                 {"runtime_bytes", m.runtime_bytes},
                 {"total_bytes", m.total_bytes},
                 {"available_bytes", m.available_bytes},
                 {"file_bytes", m.file_bytes}};
  j["fits"] = plan::fit_name(m.fit);
  j["largest_fitting_ctx"] = m.largest_fitting_ctx;
  j["smaller_quant"] = m.smaller_quant.empty() ? Json(nullptr) : Json(m.smaller_quant);
  Json predicted = {{"pp512_tokens_per_second", nullptr}, {"tg128_tokens_per_second", nullptr}};
  if (p.speed) {
    predicted["pp512_tokens_per_second"] = p.speed->pp512_tokens_per_second;
    predicted["tg128_tokens_per_second"] = p.speed->tg128_tokens_per_second;
    predicted["tg_bytes_per_token"] = p.speed->tg_bytes_per_token;
    predicted["tg_flops_per_token"] = p.speed->tg_flops_per_token;
    predicted["pp_flops_per_token"] = p.speed->pp_flops_per_token;
  }
  if (machine)
    predicted["machine"] = {{"cpu_model", machine->cpu_model},           {"kernels", machine->kernels},
                            {"n_threads", machine->n_threads},           {"source", machine->source},
                            {"read_bandwidth_gbs", machine->read_bandwidth_gbs},
                            {"measured_seconds", machine->measured_seconds}};
  j["predicted"] = predicted;
  return j;
}

std::string verdict_text(const plan::MemoryPlan& m) {
  switch (m.fit) {
    case plan::Fit::Yes: return "fits";
    case plan::Fit::Mmap:
      return fmt::format("fits with mmap paging ({} of weights would be read again from the file as needed: slow)",
                         human(m.total_bytes - m.available_bytes));
    case plan::Fit::No: return "does not fit";
  }
  return "";
}

void print_plan(const plan::Plan& p, const Options& o, const plan::MachineCapability* machine) {
  const plan::MemoryPlan& m = p.memory;
  fmt::print("{}: {} {} {}{}\n", p.path, p.arch, params_text(p.n_params), p.file_type,
             p.complete_file ? "" : fmt::format(" (incomplete: {} of {} bytes so far)",
                                                std::filesystem::file_size(p.path), m.file_bytes));
  fmt::print("\nmemory at -c {} x --parallel {}, {} KV cache, {} threads:\n\n", m.n_ctx, o.plan.n_parallel, o.kv_type,
             p.n_threads);
  const slm::tools::MarkdownTable table(
      {{"weights", 8, false}, {"tensors", 7, true}, {"in the file", 12, true}, {"in memory", 12, true}});
  table.print_header();
  for (const plan::TypeWeights& t : m.weights_by_type)
    table.print_row({std::string(slm::ggml_type_name(t.type)), std::to_string(t.n_tensors), mib(t.file_bytes),
                     mib(t.resident_bytes)});
  fmt::print("\n  weights    {:>12}  (repacked tiles on the heap; {} read from the mapped file{})\n",
             mib(m.weights_bytes), mib(m.mapped_weights_bytes),
             m.paged_embedding_bytes ? fmt::format("; {} more of the token embedding paged in by row as tokens use it",
                                                   mib(m.paged_embedding_bytes))
                                     : "");
  fmt::print("  KV cache   {:>12}  ({} positions)\n", mib(m.kv_bytes), m.kv_positions);
  if (m.state_bytes > 0)
    fmt::print("  state      {:>12}  (recurrent layers: {} copies per sequence, the state and its checkpoints)\n",
               mib(m.state_bytes), m.state_copies);
  fmt::print("  scratch    {:>12}\n", mib(m.scratch_bytes));
  fmt::print("  runtime    {:>12}\n", mib(m.runtime_bytes));
  fmt::print("  total      {:>12}  of {} available: {}\n", mib(m.total_bytes), human(m.available_bytes),
             verdict_text(m));
  if (m.fit != plan::Fit::Yes || m.largest_fitting_ctx < m.n_ctx_train)
    fmt::print("  largest context that fits at --parallel {}: {}{}\n", o.plan.n_parallel,
               m.largest_fitting_ctx > 0 ? std::to_string(m.largest_fitting_ctx) : "none",
               m.largest_fitting_ctx >= m.n_ctx_train ? " (the model's maximum)" : "");
  if (!m.smaller_quant.empty())
    fmt::print("  a {} file of this model would need {}: slm-quantize IN.gguf OUT.gguf {}\n", m.smaller_quant,
               mib(m.smaller_quant_total_bytes), m.smaller_quant);
  if (p.speed && machine) {
    fmt::print("\npredicted: pp512 {:.1f} t/s, tg128 {:.1f} t/s ({} of weights per generated token)\n",
               p.speed->pp512_tokens_per_second, p.speed->tg128_tokens_per_second, mib(p.speed->tg_bytes_per_token));
    fmt::print("machine: {}, {} threads, kernels {}, read {:.1f} GB/s ({}, {:.1f} s)\n", machine->cpu_model,
               machine->n_threads, machine->kernels, machine->read_bandwidth_gbs, machine->source,
               machine->measured_seconds);
  }
}

void print_comparison(const std::vector<plan::Plan>& plans) {
  const slm::tools::MarkdownTable table({{"model file", 10, false},
                                         {"type", 4, false},
                                         {"params", 6, true},
                                         {"weights", 10, true},
                                         {"KV cache", 10, true},
                                         {"total", 10, true},
                                         {"fits", 4, false},
                                         {"pp512 t/s", 9, true},
                                         {"tg128 t/s", 9, true}});
  table.print_header();
  for (const plan::Plan& p : plans)
    table.print_row({std::filesystem::path(p.path).filename().string(), p.file_type, params_text(p.n_params),
                     mib(p.memory.weights_bytes), mib(p.memory.kv_bytes), mib(p.memory.total_bytes),
                     std::string(plan::fit_name(p.memory.fit)),
                     p.speed ? fmt::format("{:.1f}", p.speed->pp512_tokens_per_second) : "-",
                     p.speed ? fmt::format("{:.1f}", p.speed->tg128_tokens_per_second) : "-"});
}

int run(const Options& o) {
  if (o.models.empty() && !o.calibrate) throw slm::Error("no model file given (see --help)");
  if (o.models.size() > 1 && !o.compare) throw slm::Error("several model files: add --compare for one row each");
  const std::optional<plan::MachineCapability> machine = machine_capability(o);
  const plan::MachineCapability* machine_ptr = machine ? &*machine : nullptr;
  if (o.calibrate && o.models.empty()) {
    fmt::print("calibrated {} ({} threads, kernels {}) in {:.1f} s: read {:.1f} GB/s; stored in {}\n",
               machine->cpu_model, machine->n_threads, machine->kernels, machine->measured_seconds,
               machine->read_bandwidth_gbs, plan::calibration_cache_path(o.plan.n_threads));
    return 0;
  }
  std::vector<plan::Plan> plans;
  for (const std::string& path : o.models) plans.push_back(plan::plan_model(path, o.plan, machine_ptr));
  if (o.json) {
    if (!o.compare) {
      fmt::print("{}\n", plan_json(plans.front(), o, machine_ptr).dump(2));
    } else {
      Json all = Json::array();
      for (const plan::Plan& p : plans) all.push_back(plan_json(p, o, machine_ptr));
      fmt::print("{}\n", all.dump(2));
    }
  } else if (o.compare) {
    print_comparison(plans);
  } else {
    print_plan(plans.front(), o, machine_ptr);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return slm::tools::run_tool("slm-plan", [&] {
    Options o;
    CLI::App app{"will a GGUF model fit on this machine, and how fast will slm run it? (reads only the header: "
                 "works on a file still downloading)",
                 "slm-plan"};
    app.add_option("models", o.models, "GGUF model files (several with --compare)")->type_name("MODEL.gguf");
    app.add_option("-c,--ctx-size", o.plan.n_ctx, "context per sequence (0: min(training context, 4096))")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--parallel", o.plan.n_parallel, "sequences held at once (slm-server --parallel)")
        ->capture_default_str()->check(CLI::Range(1, 1 << 16));
    slm::tools::add_kv_type_option(app, o.kv_type, "default f16 (slm-server's)")->capture_default_str();
    app.add_option("-b,--batch-size", o.plan.n_batch, "rows of one forward pass at most (the scratch is sized for them)")
        ->capture_default_str()->check(CLI::Range(1, 1 << 16));
    app.add_option("-t,--threads", o.plan.n_threads, "threads (default: physical cores, as slm-bench)")
        ->check(CLI::Range(1, 1024));
    app.add_flag("--json", o.json, "print one JSON object (an array with --compare)");
    app.add_flag("--compare", o.compare, "one table row per model file");
    app.add_flag("--calibrate", o.calibrate,
                 "measure this machine's memory bandwidth and every kernel's rate (under 20 s) and store them in "
                 "$XDG_CACHE_HOME/slm (default ~/.cache/slm), keyed by CPU, kernels and threads; without it, "
                 "a quick probe (about a second) of the file's types");
    app.add_flag("--memory-only", o.memory_only, "plan memory only: no speed prediction, no probe");
    if (const std::optional<int> exit_code = slm::tools::parse_command_line(app, argc, argv)) return *exit_code;
    o.plan.kv_type = slm::kv_type_named(o.kv_type);
    return run(o);
  });
}
