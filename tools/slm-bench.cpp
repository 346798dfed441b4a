// slm-bench: prompt-processing and generation speed, in llama-bench's table and JSON formats,
// plus the bandwidth generation achieves against the machine's measured read bandwidth.
//
//   pp<N>: N random tokens evaluated in one call from an empty cache.
//   tg<N>: after an untimed first token, N random tokens evaluated one at a time.
//   "@ d<D>" (-d D): either test after D random tokens of context, evaluated once, untimed; each
//   run truncates the cache back to them (llama-bench's -d).
// Each test runs once to warm up, then -r times; t/s is the mean ± sample stddev of the runs.
//
// With --server URL it measures a running OpenAI-compatible server instead (serving_bench.hpp).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "common/cli.hpp"
#include "common/markdown_table.hpp"
#include "common/serving_bench.hpp"
#include "common/speculative_bench.hpp"
#include "common/tool_main.hpp"
#include "slm/bench.hpp"
#include "slm/quantize.hpp"
#include "slm/session.hpp"

namespace {

using nlohmann::ordered_json;
using slm::tools::Column;
using slm::tools::MarkdownTable;

struct Options {
  std::vector<std::string> models;
  std::vector<int> n_prompt{512}, n_gen{128}, n_depth{0}, threads;
  int repetitions = 5;
  std::string output_format = "md", kv_type = "f16";
  std::vector<std::string> activations{"int16"};  // slm::LoadOptions::activations, one load per value
  int bandwidth_mib = 1024;
  uint32_t seed = 1234;
  slm::tools::SpeculativeBenchOptions speculative;  // --model-draft / --lookup-ngram: speculative tg too
};

struct TestResult {
  std::string model_filename, model_type, activations;
  uint64_t model_size = 0, model_n_params = 0;
  int n_threads = 0, n_prompt = 0, n_gen = 0, n_depth = 0;
  std::string test_time;
  std::vector<double> samples_seconds;
  double read_bandwidth_gbs = 0;  // the machine's, at n_threads: the mean of the reads next to each run

  int n_tokens() const { return n_prompt > 0 ? n_prompt : n_gen; }
  std::string test_name() const {
    const std::string name = n_prompt > 0 ? fmt::format("pp{}", n_prompt) : fmt::format("tg{}", n_gen);
    return n_depth > 0 ? fmt::format("{} @ d{}", name, n_depth) : name;  // llama-bench's naming
  }
  std::vector<double> samples_ts() const {
    std::vector<double> ts;
    for (double s : samples_seconds) ts.push_back(n_tokens() / s);
    return ts;
  }
  // Generation reads every weight once per token.
  double gen_bandwidth_gbs() const {
    return double(model_size) * slm::bench::mean_stddev(samples_ts()).mean / 1e9;
  }
};

// "qwen2 494M Q4_K - Medium": llama-bench's model_type is arch, size class, file type. llama.cpp
// names size classes from per-architecture tables; slm rounds the parameter count instead.
std::string model_type(const slm::Model& model) {
  const double n = double(model.n_params());
  const std::string size = n >= 1e9 ? fmt::format("{:.1f}B", n / 1e9)
                           : n >= 1e7 ? fmt::format("{:.0f}M", n / 1e6)
                                      : fmt::format("{:.1f}M", n / 1e6);
  std::string file_type;
  if (auto raw = model.gguf().get_u32_opt("general.file_type")) {
    file_type = slm::file_type_description(*raw);
  } else {  // llama.cpp guesses from the most common matrix type
    std::map<slm::GgmlType, int> counts;
    for (const slm::GgufTensor& t : model.gguf().tensors())
      if (t.n_dims >= 2) ++counts[t.type];
    auto most = std::max_element(counts.begin(), counts.end(), [](auto& a, auto& b) { return a.second < b.second; });
    const slm::GgmlType guess = most == counts.end() ? slm::GgmlType::F32 : most->first;
    file_type = (guess == slm::GgmlType::F32 ? "all F32" : std::string(slm::ggml_type_name(guess))) + " (guessed)";
  }
  return fmt::format("{} {} {}", model.config().arch, size, file_type);
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// One model at one thread count: every pp and tg test.
// Generation is judged against the read bandwidth measured just before each run (best of 3
// passes over the buffer), averaged like the runs: on a shared VM the bandwidth drifts by 1.8x
// within an hour, and a reading taken minutes away would judge another machine.
void run_model_tests(const Options& o, const std::shared_ptr<const slm::Model>& model, const std::string& path,
                     int n_threads, const slm::bench::ReadBandwidthBuffer& bandwidth_buffer,
                     const std::function<void(TestResult)>& on_result) {
  std::vector<std::pair<int, int>> tests;  // (n_prompt, n_gen)
  for (int p : o.n_prompt)
    if (p > 0) tests.emplace_back(p, 0);
  for (int n : o.n_gen)
    if (n > 0) tests.emplace_back(0, n);
  for (const int n_depth : o.n_depth) {
    for (const auto& [n_prompt, n_gen] : tests) {
      slm::SessionOptions session_options;
      session_options.n_threads = n_threads;
      session_options.n_ctx = std::max(1, n_depth + n_prompt + n_gen + (n_gen > 0 ? 1 : 0));
      session_options.kv_type = slm::kv_type_named(o.kv_type);
      if (session_options.n_ctx > model->config().n_ctx_train)
        throw slm::Error(fmt::format("{}: the test needs a context of {} tokens, more than the model's {}", path,
                                     session_options.n_ctx, model->config().n_ctx_train));
      slm::Session session(model, session_options);
      const std::vector<slm::TokenId> tokens =
          slm::bench::random_tokens(*model, n_depth + std::max(n_prompt, n_gen + 1), o.seed);
      const std::span<const slm::TokenId> context = std::span(tokens).first(n_depth);
      const std::span<const slm::TokenId> test_tokens = std::span(tokens).subspan(n_depth);
      if (n_depth > 0) session.eval(context, 0);  // the depth: once, untimed; each run truncates back to it
      const auto run_once = [&] {
        if (n_prompt > 0) return slm::bench::time_prompt(session, test_tokens, n_depth);
        return slm::bench::time_generation(session, test_tokens[0], test_tokens.subspan(1), n_depth);
      };

      const std::string test_time = utc_now();
      run_once();  // warm-up: page in the weights, size the scratch buffers
      std::vector<double> samples_seconds, read_bandwidth_gbs;
      for (int rep = 0; rep < o.repetitions; ++rep) {
        read_bandwidth_gbs.push_back(slm::bench::measure_read_bandwidth(bandwidth_buffer, n_threads));
        samples_seconds.push_back(run_once());
      }
      TestResult result{path,     model_type(*model), "", model->weight_bytes(), model->n_params(),
                        n_threads, n_prompt,           n_gen,                 n_depth,
                        test_time, std::move(samples_seconds), slm::bench::mean_stddev(read_bandwidth_gbs).mean};
      on_result(std::move(result));
    }
  }
}

// ---- output -------------------------------------------------------------------------------------

std::string size_text(uint64_t bytes) {  // llama-bench: MiB below 1 GiB, else GiB
  return bytes < (uint64_t(1) << 30) ? fmt::format("{:.2f} MiB", bytes / 1048576.0)
                                     : fmt::format("{:.2f} GiB", bytes / 1073741824.0);
}

std::string params_text(uint64_t n) { return n < 1000000000 ? fmt::format("{:.2f} M", n / 1e6) : fmt::format("{:.2f} B", n / 1e9); }

std::string mean_stddev_text(std::span<const double> values) {
  const slm::bench::MeanStddev m = slm::bench::mean_stddev(values);
  return fmt::format("{:.2f} ± {:.2f}", m.mean, m.stddev);
}

// Whether the table shows the activations: only when asked for other than the default, as
// llama-bench shows a parameter's column only when it is not the default.
bool shows_activations(const Options& o) { return o.activations != std::vector<std::string>{"int16"}; }

// llama-bench's table: printed row by row while the tests run.
MarkdownTable speed_table(const Options& o) {
  std::vector<Column> columns{{"model", 30, false}, {"size", 10, true}, {"params", 10, true}, {"threads", 7, true}};
  if (shows_activations(o)) columns.push_back({"act", 5, true});
  columns.push_back({"test", 13, true});
  columns.push_back({"t/s", 20, true});
  return MarkdownTable(columns);
}

std::vector<std::string> speed_row(const Options& o, const TestResult& r) {
  std::vector<std::string> row{r.model_type, size_text(r.model_size), params_text(r.model_n_params),
                               std::to_string(r.n_threads)};
  if (shows_activations(o)) row.push_back(r.activations);
  row.push_back(r.test_name());
  row.push_back(mean_stddev_text(r.samples_ts()));
  return row;
}

// The generation tests again, with the bandwidth they achieve and the machine's.
void print_bandwidth_table(const Options& o, const std::vector<TestResult>& results) {
  std::vector<std::vector<std::string>> rows;
  for (const TestResult& r : results)
    if (r.n_gen > 0)
      rows.push_back({std::filesystem::path(r.model_filename).filename().string(), std::to_string(r.n_threads),
                      r.test_name(), mean_stddev_text(r.samples_ts()), fmt::format("{:.2f}", r.gen_bandwidth_gbs()),
                      fmt::format("{:.2f}", r.read_bandwidth_gbs),
                      fmt::format("{:.0f}%", 100 * r.gen_bandwidth_gbs() / r.read_bandwidth_gbs)});
  if (!rows.empty()) {
    const MarkdownTable table({{"model file", 10, false}, {"threads", 7, true}, {"test", 6, true}, {"t/s", 14, true},
                               {"weights GB/s", 12, true}, {"machine read GB/s", 17, true}, {"share", 5, true}},
                              rows);
    fmt::print("\n");
    table.print_header();
    for (const auto& row : rows) table.print_row(row);
  }
  fmt::print("\nbuild: slm, kernels: {} (SLM_ISA chooses); weights GB/s = model size x t/s; machine read GB/s: "
             "mean over the runs of the best of 3 streaming reads of {} MiB just before each, same threads\n",
             slm::bench::active_kernel_isa(), o.bandwidth_mib);
}

void print_json(const Options& o, const std::vector<TestResult>& results, const ordered_json& speculative) {
  ordered_json out = ordered_json::array();
  for (const TestResult& r : results) {
    const std::vector<double> ts = r.samples_ts();
    std::vector<double> ns;
    std::vector<uint64_t> samples_ns;
    for (double s : r.samples_seconds) ns.push_back(s * 1e9), samples_ns.push_back(uint64_t(s * 1e9));
    const slm::bench::MeanStddev ts_stats = slm::bench::mean_stddev(ts), ns_stats = slm::bench::mean_stddev(ns);
    ordered_json entry{
        {"model_filename", r.model_filename}, {"model_type", r.model_type},
        {"model_size", r.model_size},         {"model_n_params", r.model_n_params},
        {"n_threads", r.n_threads},           {"activations", r.activations},
        {"type_k", o.kv_type},
        {"type_v", o.kv_type},                {"kernels", slm::bench::active_kernel_isa()},
        {"n_prompt", r.n_prompt},             {"n_gen", r.n_gen},
        {"n_depth", r.n_depth},
        {"test_time", r.test_time},           {"avg_ns", uint64_t(ns_stats.mean)},
        {"stddev_ns", uint64_t(ns_stats.stddev)}, {"avg_ts", ts_stats.mean},
        {"stddev_ts", ts_stats.stddev},       {"samples_ns", samples_ns},
        {"samples_ts", ts},                   {"read_bandwidth_gbs", r.read_bandwidth_gbs},
    };
    // Bandwidth of generation: tg tests only.
    entry["gen_bandwidth_gbs"] = r.n_gen > 0 ? ordered_json(r.gen_bandwidth_gbs()) : ordered_json(nullptr);
    entry["gen_bandwidth_share"] =
        r.n_gen > 0 ? ordered_json(r.gen_bandwidth_gbs() / r.read_bandwidth_gbs) : ordered_json(nullptr);
    out.push_back(std::move(entry));
  }
  for (const auto& entry : speculative) out.push_back(entry);
  fmt::print("{}\n", out.dump(2));
}

int run(Options o) {
  if (o.threads.empty()) o.threads = {slm::default_thread_count()};
  const slm::bench::ReadBandwidthBuffer bandwidth_buffer = slm::bench::make_read_bandwidth_buffer(
      uint64_t(o.bandwidth_mib) << 20, *std::max_element(o.threads.begin(), o.threads.end()));

  const bool markdown = o.output_format == "md";
  const MarkdownTable table = speed_table(o);
  if (markdown) table.print_header();
  std::vector<TestResult> results;
  std::vector<slm::tools::SpeculativeBenchResult> speculative_results;
  const std::shared_ptr<const slm::Model> draft =
      o.speculative.draft_path.empty() ? nullptr : slm::Model::load(o.speculative.draft_path);
  for (const std::string& path : o.models)
    for (const std::string& activations : o.activations) {
      slm::LoadOptions load_options;
      load_options.activations = *slm::parse_activation_precision(activations);
      load_options.on_progress = slm::tools::stderr_load_progress();
      const std::shared_ptr<const slm::Model> model = slm::Model::load(path, load_options);
      for (int t : o.threads) {
        run_model_tests(o, model, path, t, bandwidth_buffer, [&](TestResult result) {
          result.activations = activations;
          if (markdown) table.print_row(speed_row(o, result));
          results.push_back(std::move(result));
        });
        for (int n : o.n_gen)
          if (n > 1 && o.speculative.enabled())
            for (slm::tools::SpeculativeBenchResult& r : slm::tools::run_speculative_bench(
                     model, path, draft, o.speculative, t, n, o.repetitions, o.seed, slm::kv_type_named(o.kv_type)))
              speculative_results.push_back(std::move(r));
      }
    }
  if (markdown) {
    print_bandwidth_table(o, results);
    slm::tools::print_speculative_table(speculative_results);
  } else {
    print_json(o, results, slm::tools::speculative_json(speculative_results));
  }
  return 0;
}

// The --server mode's flags, in their own group of the help.
void add_serving_options(CLI::App& app, slm::tools::ServingBenchOptions& s, CLI::Option* model_option) {
  const std::string group = "Serving benchmark (--server)";
  app.add_option("--server", s.url, "measure the OpenAI-compatible server at this URL (http[s]://HOST:PORT[/v1]) with "
                                    "streamed /v1/completions requests instead of a model file")
      ->group(group)->excludes(model_option);
  app.add_option("--concurrency", s.concurrency, "requests in flight at once, one level per value, comma-separated")
      ->group(group)->delimiter(',')->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--prompt-tokens", s.prompt_tokens, "prompt length of every request")
      ->group(group)->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--gen-tokens", s.gen_tokens, "max_tokens of every request")
      ->group(group)->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--requests", s.requests, "requests per level (default: 2 x the concurrency, at least 4)")
      ->group(group)->check(CLI::Range(1, 1 << 20));
  app.add_option("--api-key", s.api_key, "sent as Authorization: Bearer KEY")->group(group);
  app.add_option("--server-model", s.model, "the requests' \"model\" (default: the first that /v1/models lists)")
      ->group(group);
  app.add_option_function<std::string>(
         "--prompt-kind",
         [&s](const std::string& kind) { s.prompt_kind = kind == "text" ? slm::tools::PromptKind::Text : slm::tools::PromptKind::TokenIds; },
         "ids: random token ids (slm-server, llama-server, vLLM); text: random words, about one token each "
         "(any server, Ollama too); default ids")
      ->group(group)->check(CLI::IsMember({"ids", "text"}));
  app.add_option("--token-id-limit", s.token_id_limit, "random prompt token ids are below this")
      ->group(group)->capture_default_str()->check(CLI::Range(2, 1 << 30));
  app.add_option("--timeout", s.timeout_seconds, "seconds to wait for a connection or for the next bytes")
      ->group(group)->capture_default_str()->check(CLI::PositiveNumber);
}

// --model-draft / --lookup-ngram: speculative tg beside plain tg, in their own group of the help.
void add_speculative_options(CLI::App& app, slm::tools::SpeculativeBenchOptions& s) {
  const std::string group = "Speculative decoding (--model-draft, --lookup-ngram)";
  slm::tools::add_speculative_options(app, s.draft_path, s.speculative,
                                      "also measure greedy generation drafted by this model (same vocabulary) "
                                      "against plain greedy generation, for every -n",
                                      group);
  app.add_option("--spec-prompt-tokens", s.n_prompt, "random prompt tokens of the speculative test")
      ->group(group)->capture_default_str()->check(CLI::Range(1, 1 << 16));
  app.add_option("--spec-prompt-file", s.prompt_file, "the speculative test's prompt as text instead (special "
                                                      "tokens parsed)")
      ->group(group)->type_name("FILE");
  app.add_flag("--spec-extraction", s.extraction,
               "an extraction-style prompt: the random prompt X, the model's greedy continuation of X as long as "
               "the test, then X again (for --lookup-ngram)")
      ->group(group);
  app.add_option("--spec-extraction-edits", s.extraction_edit_every,
                 "with --spec-extraction: replace every N-th token of the continuation's copy by a random token "
                 "(0: an exact copy)")
      ->group(group)->type_name("N")->capture_default_str()->check(CLI::NonNegativeNumber);
}

}  // namespace

int main(int argc, char** argv) {
  return slm::tools::run_tool("slm-bench", [&] {
    Options o;
    slm::tools::ServingBenchOptions serving;
    CLI::App app{"measure prompt (pp) and generation (tg) speed like llama-bench, or a server's with --server",
                 "slm-bench"};
    auto* model_option = app.add_option("-m,--model", o.models, "GGUF model files, comma-separated")->delimiter(',');
    app.add_option("-p,--n-prompt", o.n_prompt, "prompt lengths to test, comma-separated; 0 skips pp")
        ->delimiter(',')->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("-n,--n-gen", o.n_gen, "generation lengths to test, comma-separated; 0 skips tg")
        ->delimiter(',')->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("-d,--n-depth", o.n_depth, "context depths, comma-separated: each test runs after this many "
                                              "random tokens of context, evaluated untimed (llama-bench's -d)")
        ->delimiter(',')->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("-r,--repetitions", o.repetitions, "timed runs per test, after one warm-up run")
        ->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("-t,--threads", o.threads, "thread counts, comma-separated (default: physical cores)")
        ->delimiter(',')->check(CLI::PositiveNumber);
    app.add_option("-o,--output", o.output_format, "output format: md (markdown table) or json")
        ->capture_default_str()->check(CLI::IsMember({"md", "json"}));
    slm::tools::add_kv_type_option(app, o.kv_type, "default f16")->capture_default_str();
    slm::tools::add_activations_option(app, o.activations)->delimiter(',');
    app.add_option("--bw-mib", o.bandwidth_mib, "MiB of the buffer read (best of 3 passes) before every run to measure the machine's read bandwidth; far above the caches")
        ->capture_default_str()->check(CLI::Range(1, 1 << 20));
    app.add_option("--seed", o.seed, "seed of the random tokens")->capture_default_str();
    add_serving_options(app, serving, model_option);
    add_speculative_options(app, o.speculative);
    if (auto exit_code = slm::tools::parse_command_line(app, argc, argv)) return *exit_code;
    if (!serving.url.empty()) {
      serving.seed = o.seed;
      serving.json_output = o.output_format == "json";
      return slm::tools::run_serving_bench(serving);
    }
    if (o.models.empty()) {
      std::fprintf(stderr, "slm-bench: error: --model is required, or --server URL (see --help)\n");
      return 2;
    }
    return run(o);
  });
}
