#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "lib/model/arch.hpp"
#include "lib/model/session_state.hpp"
#include "slm/session.hpp"

namespace slm {

constexpr int32_t kDefaultContext = 4096;

SessionState::SessionState(const ModelConfig& c, int32_t n_ctx_, int32_t n_batch_, int n_threads_, KvType kv_type)
    : n_ctx(n_ctx_),
      n_batch(n_batch_),
      n_threads(n_threads_),
      cache(kv_type, n_ctx_, c.n_layer, c.n_head_kv * c.head_dim) {
  const auto rows = [&](int64_t width) { return std::vector<float>(size_t(n_batch) * size_t(width)); };
  x = rows(c.n_embd);
  x_norm = rows(c.n_embd);
  q = rows(int64_t(c.n_head) * c.head_dim);
  k = rows(int64_t(c.n_head_kv) * c.head_dim);
  v = rows(int64_t(c.n_head_kv) * c.head_dim);
  attn = rows(int64_t(c.n_head) * c.head_dim);
  block_out = rows(c.n_embd);
  gate = rows(c.n_ff);
  up = rows(c.n_ff);
  rope = rows(c.n_rot);
}

int32_t default_thread_count() {
  // Count distinct (package, core) pairs; fall back to the logical CPU count.
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, physical_id = "0";
  while (std::getline(cpuinfo, line)) {
    const auto value = [&] { return line.substr(line.find(':') + 1); };
    if (line.starts_with("physical id")) physical_id = value();
    if (line.starts_with("core id")) cores.insert({physical_id, value()});
  }
  if (!cores.empty()) return int32_t(cores.size());
  return std::max(1, int32_t(std::thread::hardware_concurrency()));
}

Session::Session(std::shared_ptr<const Model> model, SessionOptions options) : model_(std::move(model)) {
  if (!model_) throw Error("Session needs a model");
  const ModelConfig& c = model_->config();
  int32_t n_ctx = options.n_ctx;
  if (n_ctx < 0) throw Error(fmt::format("context size {} is negative", n_ctx));
  if (n_ctx == 0) n_ctx = std::min(c.n_ctx_train, kDefaultContext);
  if (n_ctx > c.n_ctx_train)
    throw Error(fmt::format("context size {} exceeds the model's maximum of {} ({}.context_length)", n_ctx,
                            c.n_ctx_train, c.arch));
  if (options.n_batch < 1) throw Error(fmt::format("batch size {} must be at least 1", options.n_batch));
  if (options.n_threads < 0) throw Error(fmt::format("thread count {} is negative", options.n_threads));
  const int n_threads = options.n_threads > 0 ? options.n_threads : default_thread_count();
  const int32_t n_batch = std::min(options.n_batch, n_ctx);
  state_ = std::make_unique<SessionState>(c, n_ctx, n_batch, n_threads, options.kv_type);
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

std::span<const float> Session::eval(std::span<const TokenId> tokens, int32_t start_pos, bool all_logits) {
  SessionState& s = *state_;
  const ModelConfig& c = model_->config();
  if (tokens.empty()) throw Error("eval needs at least one token");
  if (start_pos < 0 || start_pos > n_past())
    throw Error(fmt::format("eval at position {}, but the cache holds only {} positions", start_pos, n_past()));
  if (int64_t(start_pos) + int64_t(tokens.size()) > s.n_ctx)
    throw Error(fmt::format("{} tokens at position {} do not fit in the context of {} tokens", tokens.size(), start_pos,
                            s.n_ctx));
  for (TokenId id : tokens)
    if (id < 0 || id >= c.n_vocab) throw Error(fmt::format("token id {} is outside the vocabulary (0..{})", id, c.n_vocab - 1));

  truncate(start_pos);
  const int64_t n = int64_t(tokens.size());
  s.logits.resize(size_t(all_logits ? n : 1) * size_t(c.n_vocab));
  const ArchSpec* spec = find_arch(c.arch);
  for (int64_t begin = 0; begin < n; begin += s.n_batch) {
    const int64_t count = std::min<int64_t>(s.n_batch, n - begin);
    float* out = all_logits ? s.logits.data() + begin * c.n_vocab : s.logits.data();
    // Without all_logits each batch writes its last row to the same place; the final batch's stays.
    spec->forward(*model_, s, tokens.subspan(size_t(begin), size_t(count)), int32_t(start_pos + begin), all_logits, out);
    s.cached_tokens.insert(s.cached_tokens.end(), tokens.begin() + begin, tokens.begin() + begin + count);
  }
  return s.logits;
}

void Session::truncate(int32_t n_keep) {
  if (n_keep < 0) throw Error(fmt::format("cannot truncate to {} positions", n_keep));
  if (size_t(n_keep) < state_->cached_tokens.size()) state_->cached_tokens.resize(size_t(n_keep));
}

int32_t Session::n_past() const { return int32_t(state_->cached_tokens.size()); }
int32_t Session::n_ctx() const { return state_->n_ctx; }
int32_t Session::n_threads() const { return state_->n_threads; }
const std::vector<TokenId>& Session::cached_tokens() const { return state_->cached_tokens; }

}  // namespace slm
