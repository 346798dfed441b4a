// slm-perplexity: perplexity of a model on a text file, computed and printed exactly as
// llama.cpp's llama-perplexity does, and the KL divergence of a model from a base model's
// saved log-probabilities (llama-perplexity's --kl-divergence-base file, which both tools
// read and write). The method is in include/slm/perplexity.hpp.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/cli.hpp"
#include "common/tool_main.hpp"
#include "slm/perplexity.hpp"

namespace {

namespace ppl = slm::perplexity;
using Clock = std::chrono::steady_clock;

constexpr int kExitInterrupted = 130;  // 128 + SIGINT, as a shell reports it

std::atomic<bool> g_stop_requested{false};

extern "C" void on_sigint(int) { g_stop_requested.store(true); }

// Ctrl-C finishes the current chunk and stops; the handler resets itself, so a second Ctrl-C
// ends the process at once.
void install_sigint_handler() {
  struct sigaction action = {};
  action.sa_handler = on_sigint;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
}

struct Options {
  std::string model_path, text_path, json_path, kld_base_path;
  std::string kv_type = "f32";
  std::string activations = "int16";
  int32_t n_ctx = 512, n_batch = 0, max_chunks = -1, threads = 0;
  bool kl_divergence = false, n_ctx_given = false;
};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string format_duration(double seconds) {
  const auto total = int64_t(seconds + 0.5);
  if (total >= 3600) return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}

// Progress on stderr: on a terminal a bar redrawn in place; otherwise plain lines, one after
// the first chunk (its time and the ETA, as llama-perplexity prints) and then one every 10 s.
class Progress {
 public:
  explicit Progress(int32_t n_chunks) : n_chunks_(n_chunks), terminal_(isatty(STDERR_FILENO) != 0) {}
  bool on_terminal() const { return terminal_; }

  void chunk_done(int32_t done, double running_ppl) {
    const double elapsed = seconds_since(start_);
    const double eta = elapsed / done * (n_chunks_ - done);
    if (terminal_) {
      if (done < n_chunks_ && elapsed - last_report_ < 0.1) return;
      constexpr int kWidth = 30;
      const int filled = int(int64_t(kWidth) * done / n_chunks_);
      std::fprintf(stderr, "\r[%s%s] %d/%d chunks  PPL %.4f  %s elapsed, ETA %s\033[K", std::string(filled, '#').c_str(),
                   std::string(kWidth - filled, '.').c_str(), done, n_chunks_, running_ppl,
                   format_duration(elapsed).c_str(), format_duration(eta).c_str());
      bar_visible_ = true;
    } else if (done == 1) {
      std::fprintf(stderr, "slm-perplexity: %.2f seconds per chunk - ETA %s\n", elapsed, format_duration(eta).c_str());
    } else if (elapsed - last_report_ >= 10.0 && done < n_chunks_) {
      std::fprintf(stderr, "slm-perplexity: chunk %d/%d, PPL %.4f, %s elapsed, ETA %s\n", done, n_chunks_, running_ppl,
                   format_duration(elapsed).c_str(), format_duration(eta).c_str());
    } else {
      return;
    }
    last_report_ = elapsed;
    std::fflush(stderr);
  }

  // Erases the bar before other output shares the terminal.
  void clear() {
    if (!bar_visible_) return;
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    bar_visible_ = false;
  }

 private:
  int32_t n_chunks_;
  bool terminal_;
  bool bar_visible_ = false;
  Clock::time_point start_ = Clock::now();
  double last_report_ = -1e9;
};

// Evaluates chunks until all are done or Ctrl-C; `score` handles one chunk's scored logits and
// returns the running PPL. Returns the number of chunks completed.
int32_t for_each_chunk(slm::Session& session, const ppl::ChunkLayout& layout, std::span<const slm::TokenId> tokens,
                       slm::TokenId bos, Progress& progress,
                       const std::function<double(int32_t, std::span<const slm::TokenId>, std::span<const float>)>& score) {
  int32_t done = 0;
  for (; done < layout.n_chunks && !g_stop_requested.load(); ++done) {
    const std::vector<slm::TokenId> chunk = ppl::chunk_tokens(tokens, layout, done, bos);
    const std::span<const float> logits = ppl::evaluate_chunk(session, chunk, layout);
    progress.chunk_done(done + 1, score(done, chunk, logits));
  }
  progress.clear();
  return done;
}

struct RunSetup {
  std::shared_ptr<const slm::Model> model;
  slm::TokenId bos = -1;  // what replaces each chunk's first token (-1: the vocabulary adds no BOS)
  slm::SessionOptions session;
};

RunSetup set_up(const Options& o, int32_t n_ctx) {
  RunSetup setup;
  setup.model = slm::Model::load(o.model_path, slm::tools::load_options(o.activations));
  const slm::ModelConfig& config = setup.model->config();
  ppl::check_context_size(n_ctx);
  if (n_ctx > config.n_ctx_train)
    throw slm::Error(fmt::format("context size {} is larger than {}'s context of {} tokens", n_ctx, o.model_path,
                                 config.n_ctx_train));
  const slm::Tokenizer& tokenizer = setup.model->tokenizer();
  setup.bos = tokenizer.add_bos() ? tokenizer.bos() : -1;  // llama-perplexity's rule
  setup.session.n_ctx = n_ctx;
  setup.session.n_batch = o.n_batch > 0 ? std::min(o.n_batch, n_ctx) : n_ctx;
  setup.session.n_threads = o.threads;
  setup.session.kv_type = slm::kv_type_named(o.kv_type);
  return setup;
}

nlohmann::ordered_json run_json(const Options& o, const RunSetup& setup, const slm::Session& session,
                                const ppl::ChunkLayout& layout, int32_t done, double seconds) {
  nlohmann::ordered_json out;
  out["model"] = o.model_path;
  out["model_name"] = setup.model->config().name;
  out["n_ctx"] = layout.n_ctx;
  out["n_batch"] = setup.session.n_batch;
  out["n_threads"] = session.n_threads();
  out["kv_type"] = o.kv_type;
  out["activations"] = o.activations;
  out["n_chunks"] = done;
  out["n_chunks_planned"] = layout.n_chunks;
  out["n_scored_per_chunk"] = layout.n_scored();
  out["seconds"] = seconds;
  out["tokens_per_second"] = seconds > 0 ? double(done) * layout.n_ctx / seconds : 0.0;
  out["interrupted"] = done < layout.n_chunks;
  return out;
}

void write_json(const std::string& path, const nlohmann::ordered_json& json) {
  std::ofstream file(path, std::ios::binary);
  if (!(file << json.dump(1) << "\n")) throw slm::Error("cannot write " + path);
}

void report_interruption(int32_t done, const ppl::ChunkLayout& layout) {
  std::fprintf(stderr, "slm-perplexity: interrupted after %d of %d chunks; the figures cover those chunks\n", done,
               layout.n_chunks);
}

int run_perplexity(const Options& o) {
  RunSetup setup = set_up(o, o.n_ctx);
  std::ifstream text_file(o.text_path, std::ios::binary);
  if (!text_file) throw slm::Error("cannot open the text file " + o.text_path);
  const std::string text(std::istreambuf_iterator<char>(text_file), {});
  const auto tokenize_start = Clock::now();
  const std::vector<slm::TokenId> tokens = setup.model->tokenizer().tokenize(text, true, false);
  const double tokenize_seconds = seconds_since(tokenize_start);
  const ppl::ChunkLayout layout = ppl::plan_chunks(tokens.size(), o.n_ctx, o.max_chunks);
  const int32_t n_vocab = setup.model->config().n_vocab;
  std::optional<ppl::LogitsFileWriter> base_writer;
  if (!o.kld_base_path.empty()) base_writer.emplace(o.kld_base_path, n_vocab, layout, tokens);

  slm::Session session(setup.model, setup.session);
  std::fprintf(stderr,
               "slm-perplexity: %s: %zu tokens (tokenized in %.2f s), %d chunks of %d (%d scored each), batch %d, "
               "%d threads, %s activations\n",
               setup.model->config().name.c_str(), tokens.size(), tokenize_seconds, layout.n_chunks, layout.n_ctx,
               layout.n_scored(),
               setup.session.n_batch, session.n_threads(), (o.kv_type + " cache, " + o.activations).c_str());
  Progress progress(layout.n_chunks);
  // A running line on the same terminal as the bar would be overwritten: print it at the end.
  const bool defer_running_line = progress.on_terminal() && isatty(STDOUT_FILENO);
  ppl::NllStats stats;
  std::vector<double> running_ppl;
  std::string running_line;
  const auto start = Clock::now();
  const int32_t done = for_each_chunk(session, layout, tokens, setup.bos, progress,
                                      [&](int32_t index, std::span<const slm::TokenId> chunk, std::span<const float> logits) {
    for (const double nll : ppl::score_chunk(logits, chunk, layout, n_vocab, session.n_threads())) stats.add(nll);
    if (base_writer) base_writer->write_chunk(logits, session.n_threads());
    running_ppl.push_back(stats.ppl());
    const std::string entry = fmt::format("[{}]{:.4f},", index + 1, stats.ppl());
    running_line += entry;
    if (!defer_running_line) std::fputs(entry.c_str(), stdout), std::fflush(stdout);
    return stats.ppl();
  });
  const double seconds = seconds_since(start);
  if (base_writer) base_writer->finish();

  if (done > 0)
    std::printf("%s\nFinal estimate: PPL = %.4f +/- %.5f\n", defer_running_line ? running_line.c_str() : "",
                stats.ppl(), stats.ppl_stderr());
  std::fprintf(stderr, "slm-perplexity: %d chunks in %.2f s (%.0f tokens/s)\n", done, seconds,
               seconds > 0 ? done * double(layout.n_ctx) / seconds : 0.0);
  if (!o.json_path.empty()) {
    nlohmann::ordered_json out = run_json(o, setup, session, layout, done, seconds);
    out["file"] = o.text_path;
    out["n_tokens"] = tokens.size();
    out["n_scored"] = stats.count;
    out["running_ppl"] = running_ppl;
    out["final_ppl"] = stats.ppl();
    out["final_ppl_stderr"] = stats.ppl_stderr();
    if (base_writer) out["kl_divergence_base"] = o.kld_base_path;
    write_json(o.json_path, out);
  }
  if (done < layout.n_chunks) report_interruption(done, layout);
  return done < layout.n_chunks ? kExitInterrupted : 0;
}

void print_kld_chunk_line(int32_t chunk, const ppl::KldSummary& s) {
  std::printf("%5d  %10.4f ± %9.4f  %10.5f ± %9.5f  %10.6f ± %9.6f  %7.3f ± %6.3f %%  %7.3f ± %6.3f %%\n", chunk,
              s.ppl.value, s.ppl.uncertainty, s.ln_ppl_ratio.value, s.ln_ppl_ratio.uncertainty, s.mean_kld.value,
              s.mean_kld.uncertainty, 100 * s.rms_p_diff.value, 100 * s.rms_p_diff.uncertainty, 100 * s.same_top.value,
              100 * s.same_top.uncertainty);
  std::fflush(stdout);
}

void print_kld_summary(const ppl::KldSummary& s, const ppl::KldPercentiles& p) {
  std::printf("\n====== Perplexity statistics ======\n");
  std::printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", s.ppl.value, s.ppl.uncertainty);
  std::printf("Mean PPL(base)                : %10.6f ± %10.6f\n", s.ppl_base.value, s.ppl_base.uncertainty);
  std::printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", s.ln_ppl_ratio.value, s.ln_ppl_ratio.uncertainty);
  std::printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", s.ppl_ratio.value, s.ppl_ratio.uncertainty);
  std::printf("\n====== KL divergence statistics ======\n");
  std::printf("Mean    KLD: %10.6f ± %10.6f\n", s.mean_kld.value, s.mean_kld.uncertainty);
  std::printf("Maximum KLD: %10.6f\n", p.max_kld);
  std::printf("99.0%%   KLD: %10.6f\n", p.p99_kld);
  std::printf("Median  KLD: %10.6f\n", p.median_kld);
  std::printf("\n====== Token probability statistics ======\n");
  std::printf("Mean    Δp: %6.3f ± %5.3f %%\n", 100 * s.mean_p_diff.value, 100 * s.mean_p_diff.uncertainty);
  std::printf("Maximum Δp: %6.3f%%\n", 100 * p.max_p_diff);
  std::printf("Median  Δp: %6.3f%%\n", 100 * p.median_p_diff);
  std::printf("Minimum Δp: %6.3f%%\n", 100 * p.min_p_diff);
  std::printf("RMS Δp    : %6.3f ± %5.3f %%\n", 100 * s.rms_p_diff.value, 100 * s.rms_p_diff.uncertainty);
  std::printf("Same top p: %6.3f ± %5.3f %%\n", 100 * s.same_top.value, 100 * s.same_top.uncertainty);
}

nlohmann::ordered_json kld_json(const ppl::KldSummary& s, const ppl::KldPercentiles& p) {
  const auto pair = [](const ppl::ValueWithUncertainty& v) {
    return nlohmann::ordered_json{{"value", v.value}, {"uncertainty", v.uncertainty}};
  };
  return {{"n_positions", s.n_positions}, {"ppl", pair(s.ppl)},
          {"ppl_base", pair(s.ppl_base)}, {"ppl_ratio", pair(s.ppl_ratio)},
          {"ln_ppl_ratio", pair(s.ln_ppl_ratio)}, {"mean_kld", pair(s.mean_kld)},
          {"median_kld", p.median_kld}, {"p99_kld", p.p99_kld},
          {"max_kld", p.max_kld}, {"same_top", pair(s.same_top)},
          {"mean_p_diff", pair(s.mean_p_diff)}, {"rms_p_diff", pair(s.rms_p_diff)},
          {"median_p_diff", p.median_p_diff}, {"max_p_diff", p.max_p_diff},
          {"min_p_diff", p.min_p_diff}};
}

int run_kl_divergence(const Options& o) {
  ppl::LogitsFileReader base(o.kld_base_path);
  const ppl::LogitsFileHeader& header = base.header();
  if (o.n_ctx_given && o.n_ctx != header.n_ctx)
    throw slm::Error(fmt::format("{} was computed with -c {}; drop -c or pass -c {}", o.kld_base_path, header.n_ctx,
                                 header.n_ctx));
  RunSetup setup = set_up(o, header.n_ctx);
  const int32_t n_vocab = setup.model->config().n_vocab;
  if (header.n_vocab != n_vocab)
    throw slm::Error(fmt::format("vocabulary mismatch: {} holds {} log-probs per position, {} has a vocabulary of {}",
                                 o.kld_base_path, header.n_vocab, o.model_path, n_vocab));
  const ppl::ChunkLayout layout = header.layout();
  slm::Session session(setup.model, setup.session);
  std::fprintf(stderr, "slm-perplexity: %s against %s: %d chunks of %d (%d scored each), batch %d, %d threads, %s activations\n",
               setup.model->config().name.c_str(), o.kld_base_path.c_str(), layout.n_chunks, layout.n_ctx,
               layout.n_scored(), setup.session.n_batch, session.n_threads(), (o.kv_type + " cache, " + o.activations).c_str());
  std::printf("chunk         PPL(Q)           ln(PPL(Q)/PPL(base))      KL divergence             Δp RMS"
              "              Same top p\n");
  Progress progress(layout.n_chunks);
  ppl::KldStats stats;
  std::vector<double> running_ppl;
  const auto start = Clock::now();
  const int32_t done = for_each_chunk(session, layout, base.tokens(), setup.bos, progress,
                                      [&](int32_t index, std::span<const slm::TokenId> chunk, std::span<const float> logits) {
    const std::span<const uint16_t> records = base.read_chunk(index);
    for (const auto& position : ppl::compare_chunk(logits, records, chunk, layout, n_vocab, session.n_threads()))
      stats.add(position);
    const ppl::KldSummary summary = stats.summary();
    progress.clear();
    print_kld_chunk_line(index + 1, summary);
    running_ppl.push_back(summary.ppl.value);
    return summary.ppl.value;
  });
  const double seconds = seconds_since(start);
  const ppl::KldSummary summary = stats.summary();
  const ppl::KldPercentiles percentiles = stats.percentiles();
  if (done > 0) print_kld_summary(summary, percentiles);
  if (!o.json_path.empty()) {
    nlohmann::ordered_json out = run_json(o, setup, session, layout, done, seconds);
    out["file"] = o.kld_base_path;
    out["n_tokens"] = base.tokens().size();
    out["running_ppl"] = running_ppl;
    out["final_ppl"] = summary.ppl.value;
    out["final_ppl_stderr"] = summary.ppl.uncertainty;
    out["kl_divergence"] = kld_json(summary, percentiles);
    write_json(o.json_path, out);
  }
  if (done < layout.n_chunks) report_interruption(done, layout);
  return done < layout.n_chunks ? kExitInterrupted : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return slm::tools::run_tool("slm-perplexity", [&] {
    Options o;
    CLI::App app{"perplexity of a model on a text, as llama.cpp's llama-perplexity computes it, and the KL divergence "
                 "of a model from a base model's saved log-probabilities",
                 "slm-perplexity"};
    app.add_option("-m,--model", o.model_path, "GGUF model file")->required();
    app.add_option("-f,--file", o.text_path, "text file, tokenized whole (model's BOS rule, no special-token parsing)");
    app.add_option("-c,--ctx-size", o.n_ctx, "chunk size in tokens: even, at most the model's context; the second half "
                                             "of each chunk is scored")->default_val(512);
    app.add_option("-b,--batch-size", o.n_batch, "tokens per forward batch (default: the chunk size; results do not "
                                                 "depend on it)")->check(CLI::PositiveNumber);
    app.add_option("--chunks", o.max_chunks, "evaluate at most N chunks (default: all that fit in the text)")
        ->check(CLI::PositiveNumber);
    app.add_option("-t,--threads", o.threads, "threads (default: physical cores)")->check(CLI::NonNegativeNumber);
    slm::tools::add_kv_type_option(app, o.kv_type,
                                   "default f32 (within 0.01% of the exact float64 perplexity); f16 is "
                                   "llama-perplexity's default (rounding keys and values costs +0.012% on stories260K)");
    slm::tools::add_activations_option(app, o.activations);
    app.add_option("--json", o.json_path, "also write the result as JSON to FILE");
    app.add_option("--kl-divergence-base", o.kld_base_path,
                   "with -f: save the scored positions' log-probabilities to FILE (llama-perplexity's format); "
                   "with --kl-divergence: read them from FILE");
    app.add_flag("--kl-divergence", o.kl_divergence,
                 "compare the model with the base saved in --kl-divergence-base FILE (its tokens are used; no -f)");
    if (auto exit_code = slm::tools::parse_command_line(app, argc, argv)) return *exit_code;
    o.n_ctx_given = app.count("--ctx-size") > 0;
    if (o.kl_divergence && o.kld_base_path.empty())
      throw slm::Error("--kl-divergence needs --kl-divergence-base FILE, the base model's saved log-probabilities");
    if (!o.kl_divergence && o.text_path.empty()) throw slm::Error("-f TEXT is required (see --help)");
    install_sigint_handler();
    return o.kl_divergence ? run_kl_divergence(o) : run_perplexity(o);
  });
}
