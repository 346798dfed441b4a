#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "slm/batch.hpp"
#include "slm/session.hpp"

namespace slm {

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

Session::Session(std::shared_ptr<const Model> model, SessionOptions options) {
  if (!model) throw Error("Session needs a model");
  if (options.n_batch < 1) throw Error(fmt::format("batch size {} must be at least 1", options.n_batch));
  // One sequence, with a pool of exactly its context.
  decoder_ = std::make_unique<BatchDecoder>(std::move(model), BatchDecoderOptions{.n_ctx = options.n_ctx,
                                                                                   .kv_tokens = options.n_ctx,
                                                                                   .n_threads = options.n_threads,
                                                                                   .max_batch_rows = options.n_batch,
                                                                                   .kv_type = options.kv_type,
                                                                                   .checkpoint_interval = options.checkpoint_interval,
                                                                                   .max_checkpoints = options.max_checkpoints,
                                                                                   .logit_vocab = options.logit_vocab});
  sequence_ = decoder_->add_sequence();
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

std::span<const float> Session::eval(std::span<const TokenId> tokens, int32_t start_pos, bool all_logits) {
  if (tokens.empty()) throw Error("eval needs at least one token");
  if (start_pos < 0 || start_pos > n_past())
    throw Error(fmt::format("eval at position {}, but the cache holds only {} positions", start_pos, n_past()));
  if (int64_t(start_pos) + int64_t(tokens.size()) > n_ctx())
    throw Error(fmt::format("{} tokens at position {} do not fit in the context of {} tokens", tokens.size(), start_pos,
                            n_ctx()));
  rows_.resize(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i)
    rows_[i] = {sequence_, start_pos + int32_t(i), tokens[i], all_logits || i + 1 == tokens.size()};
  return decoder_->decode(rows_);
}

void Session::truncate(int32_t n_keep) {
  if (n_keep < 0) throw Error(fmt::format("cannot truncate to {} positions", n_keep));
  decoder_->truncate(sequence_, n_keep);
}

int32_t Session::reusable_prefix(int32_t n) const { return decoder_->reusable_prefix(sequence_, n); }
uint64_t Session::rows_evaluated() const { return decoder_->rows_evaluated(); }
int32_t Session::n_past() const { return int32_t(decoder_->tokens(sequence_).size()); }
int32_t Session::n_ctx() const { return decoder_->n_ctx(); }
int32_t Session::n_threads() const { return decoder_->n_threads(); }
const std::vector<TokenId>& Session::cached_tokens() const { return decoder_->tokens(sequence_); }
const Model& Session::model() const { return decoder_->model(); }
const std::shared_ptr<const Model>& Session::model_ptr() const { return decoder_->model_ptr(); }

}  // namespace slm
