// slm-chat: talk to a local model. One-shot with -p, interactive otherwise.
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "common/chat_prompt.hpp"
#include "common/cli.hpp"
#include "common/tool_main.hpp"
#include "slm/generate.hpp"

namespace {

std::atomic<bool> g_cancel{false};
std::atomic<bool> g_generating{false};

void on_sigint(int) {
  if (g_generating.load()) {
    g_cancel.store(true);  // stop the reply, keep the conversation
  } else {
    const char newline = '\n';
    (void)!write(STDOUT_FILENO, &newline, 1);
    _exit(130);
  }
}

struct ChatOptions {
  std::string model_path, prompt, system_prompt, kv_type = "f16";
  bool raw = false, verbose = false;
  int n_predict = -1, context = 0, threads = 0;
  slm::SamplerParams sampling;
};

class Chat {
 public:
  explicit Chat(const ChatOptions& o)
      : options_(o),
        model_(slm::Model::load(o.model_path)),
        session_(model_, session_options(o)),
        sampler_(o.sampling),
        format_(slm::tools::pick_builtin_format(*model_)) {
    if (!o.system_prompt.empty()) messages_.push_back({"system", o.system_prompt});
    if (o.verbose)
      std::fprintf(stderr, "slm-chat: %s (%s), context %d, %d threads, chat format %s (built-in)\n",
                   model_->config().name.c_str(), model_->config().arch.c_str(), session_.n_ctx(),
                   session_.n_threads(), slm::tools::builtin_format_name(format_));
  }

  // Completes raw text (no chat template).
  void complete_raw(const std::string& text) {
    const auto tokens = model_->tokenizer().tokenize(text, true, false);
    run(tokens);
  }

  // Adds a user turn and streams the assistant's reply.
  void reply_to(const std::string& user_text) {
    messages_.push_back({"user", user_text});
    const std::string prompt = slm::tools::render_builtin(format_, messages_, true);
    const slm::Tokenizer& tokenizer = model_->tokenizer();
    const bool prompt_has_bos = tokenizer.bos() >= 0 && prompt.starts_with(tokenizer.token_text(tokenizer.bos()));
    const auto tokens = tokenizer.tokenize(prompt, !prompt_has_bos, true);
    const slm::GenerateResult r = run(tokens);
    messages_.push_back({"assistant", r.text});
  }

 private:
  static slm::SessionOptions session_options(const ChatOptions& o) {
    slm::SessionOptions s;
    s.n_ctx = o.context;
    s.n_threads = o.threads;
    s.kv_type = o.kv_type == "f32" ? slm::KvType::F32 : slm::KvType::F16;
    return s;
  }

  slm::GenerateResult run(const std::vector<slm::TokenId>& tokens) {
    slm::GenerateOptions gen;
    gen.max_tokens = options_.n_predict;
    gen.cancel = &g_cancel;
    g_cancel = false;
    g_generating = true;
    const slm::GenerateResult r = slm::generate(session_, sampler_, tokens, gen, [](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    g_generating = false;
    std::fputc('\n', stdout);
    if (r.stop_reason == slm::StopReason::ContextFull) std::fprintf(stderr, "[context full: reply cut short]\n");
    if (options_.verbose) print_timings(r);
    return r;
  }

  static void print_timings(const slm::GenerateResult& r) {
    const double prompt_rate = r.prompt_seconds > 0 ? r.n_prompt_evaluated / r.prompt_seconds : 0;
    const double gen_rate = r.generation_seconds > 0 && r.tokens.size() > 1
                                ? double(r.tokens.size() - 1) / r.generation_seconds
                                : 0;
    std::fprintf(stderr,
                 "[prompt: %d tokens (%d from cache), %.1f tok/s | generation: %zu tokens, %.1f tok/s | "
                 "time to first token: %.0f ms | stop: %s]\n",
                 r.n_prompt_tokens, r.n_prompt_tokens - r.n_prompt_evaluated, prompt_rate, r.tokens.size(), gen_rate,
                 r.time_to_first_token * 1000.0, std::string(slm::stop_reason_name(r.stop_reason)).c_str());
  }

  ChatOptions options_;
  std::shared_ptr<const slm::Model> model_;
  slm::Session session_;
  slm::Sampler sampler_;
  slm::tools::BuiltinChatFormat format_;
  std::vector<slm::tools::ChatMessage> messages_;
};

int run(const ChatOptions& o) {
  Chat chat(o);
  std::signal(SIGINT, on_sigint);
  if (!o.prompt.empty()) {
    if (o.raw) chat.complete_raw(o.prompt);
    else chat.reply_to(o.prompt);
    return 0;
  }
  const bool interactive = isatty(STDIN_FILENO);
  if (interactive) std::fprintf(stderr, "Chatting. Ctrl-C stops a reply, Ctrl-D exits.\n");
  std::string line;
  while (true) {
    if (interactive) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (o.raw) chat.complete_raw(line);
    else chat.reply_to(line);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return slm::tools::run_tool("slm-chat", [&] {
    ChatOptions o;
    slm::SamplerParams& s = o.sampling;
    CLI::App app{"chat with a local GGUF model (interactive, or one-shot with -p)", "slm-chat"};
    app.add_option("-m,--model", o.model_path, "GGUF model file")->required();
    app.add_option("-p,--prompt", o.prompt, "one-shot: answer this prompt, print the reply and exit");
    app.add_flag("--raw", o.raw, "no chat template: continue the prompt text as it is");
    app.add_option("--system", o.system_prompt, "system prompt for the conversation");
    app.add_option("-n,--n-predict", o.n_predict, "tokens to generate per reply at most (-1: until the end of the turn)")
        ->default_val(-1);
    app.add_option("-c,--ctx-size", o.context, "context size in tokens (0: the model's, at most 4096)")
        ->default_val(0)->check(CLI::NonNegativeNumber);
    app.add_option("-t,--threads", o.threads, "threads (0: the number of physical cores)")
        ->default_val(0)->check(CLI::NonNegativeNumber);
    app.add_option("--temp", s.temperature, "temperature; 0 picks the most likely token (greedy)")->default_val(0.8f);
    app.add_option("--top-k", s.top_k, "keep the k most likely tokens (0: off)")->default_val(40);
    app.add_option("--top-p", s.top_p, "keep the smallest set of tokens whose probability reaches p (1: off)")
        ->default_val(0.95f);
    app.add_option("--min-p", s.min_p, "drop tokens less likely than min-p times the best (0: off)")->default_val(0.05f);
    app.add_option("--repeat-penalty", s.repeat_penalty, "penalize tokens seen in the last --repeat-last-n (1: off)")
        ->default_val(1.0f)->check(CLI::PositiveNumber);
    app.add_option("--repeat-last-n", s.penalty_last_n, "how many recent tokens the penalties look at")
        ->default_val(64)->check(CLI::NonNegativeNumber);
    app.add_option("--presence-penalty", s.presence_penalty, "subtract from tokens seen recently (0: off)")
        ->default_val(0.0f);
    app.add_option("--frequency-penalty", s.frequency_penalty, "subtract per recent occurrence (0: off)")
        ->default_val(0.0f);
    app.add_option("-s,--seed", s.seed, "random seed: the same seed and settings give the same reply")
        ->default_val(s.seed);
    app.add_option("--kv-type", o.kv_type, "KV cache type: f16 (default) or f32")->check(CLI::IsMember({"f16", "f32"}));
    app.add_flag("-v,--verbose", o.verbose, "print model info and timings (prompt and generation tok/s, time to first token)");
    if (auto exit_code = slm::tools::parse_command_line(app, argc, argv)) return *exit_code;
    return run(o);
  });
}
