// slm-server: an OpenAI-compatible HTTP server over the continuous-batching scheduler.
// The work is in lib/server/; this file reads the flags, loads the model while the server
// already answers /health with 503, and shuts down on SIGTERM/SIGINT: new requests get 503,
// requests in flight finish (a second signal cancels them), and the process exits 0.
#include <fmt/format.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/cli.hpp"
#include "common/tool_main.hpp"
#include "lib/chat/chat_prompt.hpp"
#include "lib/server/http_server.hpp"
#include "lib/server/route_request.hpp"
#include "slm/scheduler.hpp"

namespace {

struct ServerFlags {
  std::string model_path, host = "127.0.0.1", alias, api_key, api_key_file, template_file, kv_type = "f16", activations = "int16";
  std::optional<std::string> template_kwargs;
  // Tiered routing (lib/server/route_request.hpp): off unless fallback_url is given.
  std::string fallback_url, fallback_model, fallback_key_env, fallback_key_file, route, route_log;
  double fallback_timeout = 60;
  bool route_log_prompts = false;
  int port = 8080, parallel = 4, queue = 64, batch_tokens = 512, context = 0, threads = 0;
  int64_t kv_size = 0, kv_memory_mib = 0;
  int32_t checkpoint_interval = slm::BatchDecoderOptions{}.checkpoint_interval;
  int32_t max_checkpoints = slm::BatchDecoderOptions{}.max_checkpoints;
  uint64_t seed = slm::SamplerParams{}.seed;
  bool webui = true;
  // Speculative decoding: off unless draft_path or speculative.lookup_ngram is given.
  std::string draft_path;
  slm::SpeculativeOptions speculative;
  int32_t draft_max_running = slm::SchedulerOptions{}.speculation_max_running;
};

std::string read_api_key_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw slm::Error(fmt::format("cannot read the API key file {}", path));
  std::string key;
  std::getline(in, key);
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
  if (key.empty()) throw slm::Error(fmt::format("the API key file {} holds no key on its first line", path));
  return key;
}

// The fallback's key, from the environment or a file: never a flag's value (ps shows those), and
// never in a message.
std::string fallback_api_key(const ServerFlags& f) {
  if (!f.fallback_key_file.empty()) return read_api_key_file(f.fallback_key_file);
  if (f.fallback_key_env.empty()) return {};
  const char* key = std::getenv(f.fallback_key_env.c_str());
  if (!key || !*key)
    throw slm::Error(fmt::format("--fallback-api-key-env {}: the environment variable is not set or is empty",
                                 f.fallback_key_env));
  return key;
}

std::shared_ptr<slm::server::Router> make_router(const ServerFlags& f) {
  if (f.fallback_url.empty()) return nullptr;
  slm::server::RouterOptions options;
  options.fallback = {f.fallback_url, f.fallback_model, fallback_api_key(f), f.fallback_timeout};
  options.policy = slm::server::parse_route_policy(f.route);
  options.log_path = f.route_log;
  options.log_prompts = f.route_log_prompts;
  auto router = std::make_shared<slm::server::Router>(std::move(options));
  std::fprintf(stderr, "slm-server: routing (--route %s) to the model %s at %s: the prompts of routed requests are "
                       "sent there\n", f.route.c_str(), f.fallback_model.c_str(), f.fallback_url.c_str());
  return router;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

int32_t context_per_request(const ServerFlags& f, const slm::Model& model) {
  if (f.context > 0) return f.context;
  const int32_t trained = model.config().n_ctx_train;
  return trained > 0 ? std::min(trained, 4096) : 4096;
}

// --kv-size, else --kv-memory converted to positions, else parallel x context, capped at a
// quarter of the machine's memory (and never below one context).
int32_t kv_pool_tokens(const ServerFlags& f, const slm::Model& model, int32_t n_ctx) {
  if (f.kv_size > 0) return int32_t(std::min<int64_t>(f.kv_size, INT32_MAX));
  const slm::ModelConfig& c = model.config();
  const int64_t bytes_per_token =
      std::max<int64_t>(1, int64_t(slm::kv_bytes_per_token(c, slm::kv_type_named(f.kv_type))));
  if (f.kv_memory_mib > 0) return int32_t(std::min<int64_t>((f.kv_memory_mib << 20) / bytes_per_token, INT32_MAX));
  const int64_t quarter_of_memory = int64_t(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE) / 4;
  const int64_t wanted = int64_t(f.parallel) * n_ctx;
  return int32_t(std::clamp<int64_t>(std::min(wanted, quarter_of_memory / bytes_per_token), n_ctx, INT32_MAX));
}

slm::chat::ChatTemplate server_chat_template(const ServerFlags& f, const slm::Model& model) {
  std::string warning;
  slm::chat::ChatTemplate chat_template = slm::chat::choose_chat_template(&model, {f.template_file, {}}, warning);
  if (!warning.empty()) std::fprintf(stderr, "slm-server: %s\n", warning.c_str());
  if (f.template_kwargs) {
    chat_template.extra_vars = slm::jinja::value_from_json(*f.template_kwargs);
    if (!chat_template.extra_vars.is_dict()) throw slm::Error("--chat-template-kwargs must be a JSON object");
  }
  return chat_template;
}

// SIGTERM and SIGINT are blocked in every thread and taken here, by sigwait: the first asks
// main() to shut down gracefully, the second cancels what is still running.
struct ShutdownSignals {
  std::mutex mutex;
  std::condition_variable signalled;
  int count = 0;
  bool exiting = false;

  void wait_loop(slm::server::HttpServer& http, std::shared_ptr<slm::Scheduler>& scheduler) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    while (true) {
      int signal_number = 0;
      sigwait(&set, &signal_number);
      std::lock_guard lock(mutex);
      if (exiting) return;
      if (++count == 2) {
        std::fputs("slm-server: second signal: cancelling the requests in flight\n", stderr);
        http.cancel_requests_in_flight();
        if (scheduler) scheduler->shutdown(/*drain=*/false);
      }
      signalled.notify_all();
    }
  }
};

int run_server(const ServerFlags& f) {
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGINT);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);  // before any thread starts, so all inherit it
  std::signal(SIGPIPE, SIG_IGN);                  // a client that hangs up is a failed write, not a death

  slm::server::HttpServerOptions options;
  options.host = f.host;
  options.port = f.port;
  options.api_key = f.api_key_file.empty() ? f.api_key : read_api_key_file(f.api_key_file);
  options.model_name = f.alias.empty() ? std::filesystem::path(f.model_path).filename().string() : f.alias;
  options.sampling.seed = f.seed;
  options.webui = f.webui;
  options.http_threads = f.parallel + f.queue + 8;  // waiting requests hold a thread each, and /health needs one
  options.router = make_router(f);
  if (!is_loopback(f.host) && options.api_key.empty())
    std::fprintf(stderr, "slm-server: warning: listening on %s, beyond this machine, without --api-key: anyone who "
                         "can reach the port can use the model\n", f.host.c_str());

  slm::server::HttpServer http(options);
  const int port = http.bind();
  std::thread serving([&] { http.serve(); });
  std::shared_ptr<slm::Scheduler> scheduler;
  ShutdownSignals signals;
  std::thread signal_thread([&] { signals.wait_loop(http, scheduler); });
  const auto finish = [&](int exit_code) {
    http.stop();
    serving.join();
    {
      std::lock_guard lock(signals.mutex);
      signals.exiting = true;
    }
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
    return exit_code;
  };

  std::fprintf(stderr, "slm-server: loading %s (GET /health answers 503 until it is ready)\n", f.model_path.c_str());
  try {
    const std::shared_ptr<const slm::Model> model = slm::Model::load(f.model_path, slm::tools::load_options(f.activations));
    slm::SchedulerOptions scheduler_options;
    scheduler_options.parallel = f.parallel;
    scheduler_options.queue = f.queue;
    scheduler_options.batch_tokens = f.batch_tokens;
    scheduler_options.decoder.n_ctx = context_per_request(f, *model);
    scheduler_options.decoder.kv_tokens = kv_pool_tokens(f, *model, scheduler_options.decoder.n_ctx);
    scheduler_options.decoder.n_threads = f.threads;
    scheduler_options.decoder.kv_type = slm::kv_type_named(f.kv_type);
    scheduler_options.decoder.checkpoint_interval = f.checkpoint_interval;
    scheduler_options.decoder.max_checkpoints = f.max_checkpoints;
    if (!f.draft_path.empty()) scheduler_options.draft_model = slm::Model::load(f.draft_path, slm::tools::load_options(f.activations));
    scheduler_options.speculative = f.speculative;
    scheduler_options.speculation_max_running = f.draft_max_running;
    slm::chat::ChatTemplate chat_template = server_chat_template(f, *model);
    {
      std::lock_guard lock(signals.mutex);
      scheduler = std::make_shared<slm::Scheduler>(model, scheduler_options);
    }
    http.set_model({scheduler, std::move(chat_template)});
    const slm::SchedulerStats stats = scheduler->stats();
    std::fprintf(stderr,
                 "slm-server: listening on http://%s:%d (model %s; %d requests at once, %d queued, context %d tokens "
                 "each, KV pool %d tokens)\n",
                 f.host.find(':') != std::string::npos ? ("[" + f.host + "]").c_str() : f.host.c_str(), port,
                 options.model_name.c_str(), f.parallel, f.queue, scheduler->n_ctx(),
                 stats.kv_blocks_total * slm::kKvBlockTokens);
    if (stats.state_bytes_per_sequence > 0)
      std::fprintf(stderr,
                   "slm-server: recurrent state %.1f KiB per sequence, each checkpoint as much (at most %d per "
                   "sequence, one every %d positions)\n",
                   double(stats.state_bytes_per_sequence) / 1024.0, f.max_checkpoints, f.checkpoint_interval);
  } catch (...) {
    finish(1);
    throw;
  }

  {
    std::unique_lock lock(signals.mutex);
    signals.signalled.wait(lock, [&] { return signals.count > 0; });
  }
  std::fputs("slm-server: shutting down: new requests get 503, those in flight finish (a second signal cancels "
             "them)\n", stderr);
  http.refuse_new_requests();
  scheduler->shutdown(/*drain=*/true);
  http.wait_until_idle();
  return finish(0);
}

void add_routing_flags(CLI::App& app, ServerFlags& f) {
  auto* url = app.add_option("--fallback-url", f.fallback_url,
                             "tiered routing: the base URL of an OpenAI-compatible fallback (e.g. "
                             "http://127.0.0.1:8081/v1). Routed requests' prompts are sent there; off without it")
                  ->type_name("URL");
  auto* model = app.add_option("--fallback-model", f.fallback_model, "the fallback's model name")
                    ->type_name("NAME")->needs(url);
  auto* route = app.add_option("--route", f.route,
                               "when to ask the fallback, comma-separated: confidence:T (the local answer's mean "
                               "token logprob below T), prompt-tokens:N (prompts longer than N), model:auto "
                               "(only requests for the model \"auto\")")
                    ->type_name("POLICY[,POLICY]")->needs(url)
                    ->check([](const std::string& text) -> std::string {
                      try {
                        slm::server::parse_route_policy(text);
                        return {};
                      } catch (const slm::Error& e) {
                        return e.what();
                      }
                    });
  url->needs(model)->needs(route);
  auto* key_env = app.add_option("--fallback-api-key-env", f.fallback_key_env,
                                 "the fallback's API key is in this environment variable")
                      ->type_name("VAR")->needs(url);
  app.add_option("--fallback-api-key-file", f.fallback_key_file, "the fallback's API key is the first line of FILE")
      ->type_name("FILE")->needs(url)->excludes(key_env);
  app.add_option("--fallback-timeout", f.fallback_timeout,
                 "seconds to connect to the fallback and for its whole answer; past it the local answer is sent")
      ->type_name("SECONDS")->default_val(60)->check(CLI::PositiveNumber)->needs(url);
  auto* log = app.add_option("--route-log", f.route_log,
                             "append one JSON line per routed request to FILE (route, reason, confidence; no "
                             "prompt text), for calibrating confidence:T")
                  ->type_name("FILE")->needs(url);
  app.add_flag("--route-log-prompts", f.route_log_prompts, "--route-log lines hold the request's messages or prompt")
      ->needs(log);
}

void add_speculative_flags(CLI::App& app, ServerFlags& f) {
  const std::string group = "Speculative decoding (greedy requests without a grammar)";
  slm::tools::add_speculative_options(app, f.draft_path, f.speculative,
                                      "a smaller GGUF model with the same vocabulary drafts tokens that the model "
                                      "checks in the same batch (the output is byte-identical)",
                                      group);
  app.add_option("--draft-max-running", f.draft_max_running,
                 "draft only while at most N requests are running (past it their own tokens fill the batch)")
      ->group(group)->capture_default_str()->check(CLI::NonNegativeNumber);
}

}  // namespace

int main(int argc, char** argv) {
  return slm::tools::run_tool("slm-server", [&] {
    ServerFlags f;
    CLI::App app{"an OpenAI-compatible HTTP server for a local GGUF model: POST /v1/chat/completions, "
                 "/v1/completions, GET /v1/models, /health, /metrics, POST /tokenize, /detokenize, and a chat "
                 "page at /",
                 "slm-server"};
    app.add_option("-m,--model", f.model_path, "GGUF model file")->type_name("FILE")->required();
    app.add_option("--host", f.host, "address to listen on; anything but loopback needs --api-key to be safe")
        ->default_val("127.0.0.1");
    app.add_option("--port", f.port, "TCP port (0: any free port, printed once ready)")
        ->default_val(8080)->check(CLI::Range(0, 65535));
    app.add_option("--parallel", f.parallel, "requests generating at once (continuous batching)")
        ->default_val(4)->check(CLI::Range(1, 256));
    app.add_option("--queue", f.queue, "requests waiting beyond those; past that the answer is 503 with Retry-After")
        ->default_val(64)->check(CLI::Range(0, 4096));
    app.add_option("--batch-tokens", f.batch_tokens,
                   "tokens per forward pass: every running request's next token, then chunks of waiting prompts")
        ->default_val(512)->check(CLI::Range(1, 65536));
    app.add_option("-c,--ctx-size", f.context, "context of each request, prompt plus reply (0: the model's, at most 4096)")
        ->default_val(0)->check(CLI::NonNegativeNumber);
    app.add_option("--kv-size", f.kv_size,
                   "positions in the KV pool all requests share (0: --parallel x --ctx-size, at most a quarter of "
                   "the RAM, at least one context)")
        ->default_val(0)->check(CLI::NonNegativeNumber);
    app.add_option("--kv-memory", f.kv_memory_mib, "the KV pool's size in MiB instead of --kv-size")
        ->type_name("MIB")->check(CLI::PositiveNumber)->excludes("--kv-size");
    slm::tools::add_kv_type_option(app, f.kv_type, "default f16")->default_val("f16");
    slm::tools::add_activations_option(app, f.activations);
    app.add_option("-t,--threads", f.threads, "threads (0: the number of physical cores)")
        ->default_val(0)->check(CLI::NonNegativeNumber);
    slm::tools::add_state_checkpoint_options(app, f.checkpoint_interval, f.max_checkpoints);
    app.add_option("--alias", f.alias, "model name in /v1/models (default: the file's name); any name is accepted "
                                      "in requests");
    auto* key = app.add_option("--api-key", f.api_key,
                               "require 'Authorization: Bearer KEY' on every route but /health");
    app.add_option("--api-key-file", f.api_key_file, "read the key from the first line of FILE (kept out of ps)")
        ->type_name("FILE")->excludes(key);
    app.add_option("--chat-template-file", f.template_file,
                   "Jinja chat template to use instead of the model's own (tokenizer.chat_template)")
        ->type_name("FILE");
    app.add_option("--chat-template-kwargs", f.template_kwargs,
                   "template variables for every request, as a JSON object (a request's chat_template_kwargs "
                   "override them)");
    app.add_option("-s,--seed", f.seed,
                   "seed of requests that give none: the same request then gets the same answer")
        ->default_val(f.seed);
    app.add_flag("--webui,!--no-webui", f.webui,
                 "serve the chat page at / (on by default; it needs no key, the API it calls does)");
    add_speculative_flags(app, f);
    add_routing_flags(app, f);
    if (auto exit_code = slm::tools::parse_command_line(app, argc, argv)) return *exit_code;
    return run_server(f);
  });
}
