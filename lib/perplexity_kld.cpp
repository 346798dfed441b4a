// llama-perplexity's --kl-divergence-base file and the KL-divergence statistics computed
// against it (format in slm/perplexity.hpp).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "slm/error.hpp"
#include "slm/perplexity.hpp"

namespace slm::perplexity {

namespace {

constexpr uint64_t kHeaderBytes = 8 + 4 + 4 + 4;  // magic, n_ctx, n_vocab, n_chunks
constexpr float kLogProbRange = 16.0f;           // logits below max - 16 are stored as the minimum

float record_float(std::span<const uint16_t> record, size_t index) {
  float value = 0;
  std::memcpy(&value, record.data() + 2 * index, sizeof value);
  return value;
}

uint64_t token_bytes(const ChunkLayout& layout, int32_t n_chunks) {
  return uint64_t(n_chunks) * uint64_t(layout.n_ctx) * sizeof(TokenId);
}

uint64_t chunk_record_values(const ChunkLayout& layout, int32_t n_vocab) {
  return uint64_t(layout.n_scored()) * uint64_t(log_prob_record_size(n_vocab));
}

}  // namespace

int64_t log_prob_record_size(int32_t n_vocab) { return 2 * ((int64_t(n_vocab) + 1) / 2) + 4; }

void encode_log_probs(std::span<const float> logits, std::span<uint16_t> record) {
  const auto n_vocab = int32_t(logits.size());
  if (n_vocab <= 0 || record.size() != size_t(log_prob_record_size(n_vocab)))
    throw Error(fmt::format("encode_log_probs: {} logits need a record of {} values, got {}", logits.size(),
                            log_prob_record_size(n_vocab), record.size()));
  const auto max_it = std::max_element(logits.begin(), logits.end());  // the first of equal maxima
  const float max_logit = *max_it;
  const float min_logit = std::max(*std::min_element(logits.begin(), logits.end()), max_logit - kLogProbRange);
  double sum = 0.0;
  for (const float logit : logits) sum += std::exp(logit - max_logit);
  const float min_log_prob = min_logit - max_logit - float(std::log(sum));
  const float scale = (max_logit - min_logit) / 65535.0f;
  std::memcpy(record.data(), &scale, sizeof scale);
  std::memcpy(record.data() + 2, &min_log_prob, sizeof min_log_prob);
  uint16_t* quantized = record.data() + 4;
  std::fill(quantized, record.data() + record.size(), uint16_t(0));
  if (scale <= 0) return;  // all logits equal: every token has log p = min_log_prob
  const float inverse_scale = 1.0f / scale;
  for (int32_t i = 0; i < n_vocab; ++i)
    if (logits[size_t(i)] > min_logit)
      quantized[i] = uint16_t(std::min(65535L, std::lrint(inverse_scale * (logits[size_t(i)] - min_logit))));
  // Only the top token (the first, on exact ties) keeps the top code: a runner-up within half a
  // step of it goes one code lower, so the file's argmax is the model's argmax and a model
  // compared with its own file agrees on every top token. llama.cpp's writer lets such near-ties
  // share the code; its reader then takes the lower id, a false disagreement.
  const auto top = size_t(max_it - logits.begin());
  for (int32_t i = 0; i < n_vocab; ++i)
    if (quantized[i] == 65535 && size_t(i) != top) quantized[i] = 65534;
}

float decoded_log_prob(std::span<const uint16_t> record, TokenId token) {
  return record_float(record, 0) * float(record[4 + size_t(token)]) + record_float(record, 1);
}

// --- Writer --------------------------------------------------------------------------------

LogitsFileWriter::LogitsFileWriter(std::string path, int32_t n_vocab, const ChunkLayout& layout,
                                   std::span<const TokenId> tokens)
    : path_(std::move(path)), n_vocab_(n_vocab), layout_(layout) {
  const uint64_t n_tokens = uint64_t(layout.n_chunks) * uint64_t(layout.n_ctx);
  if (tokens.size() < n_tokens)
    throw Error(fmt::format("{}: {} tokens given for {} chunks of {}", path_, tokens.size(), layout.n_chunks, layout.n_ctx));
  out_.open(path_, std::ios::binary | std::ios::trunc);
  if (!out_) throw Error(fmt::format("cannot create the KL-divergence base file {}", path_));
  const auto n_ctx = uint32_t(layout.n_ctx);
  out_.write(kLogitsFileMagic, sizeof kLogitsFileMagic);
  out_.write(reinterpret_cast<const char*>(&n_ctx), sizeof n_ctx);
  out_.write(reinterpret_cast<const char*>(&n_vocab), sizeof n_vocab);
  out_.write(reinterpret_cast<const char*>(&layout.n_chunks), sizeof layout.n_chunks);
  out_.write(reinterpret_cast<const char*>(tokens.data()), std::streamsize(n_tokens * sizeof(TokenId)));
  if (!out_) throw Error(fmt::format("cannot write the KL-divergence base file {}", path_));
  records_.resize(chunk_record_values(layout, n_vocab));
}

void LogitsFileWriter::write_chunk(std::span<const float> scored_logits, int n_threads) {
  const int32_t n_scored = layout_.n_scored();
  if (scored_logits.size() != size_t(n_scored) * size_t(n_vocab_))
    throw Error(fmt::format("{}: a chunk needs {} rows of {} logits", path_, n_scored, n_vocab_));
  if (chunks_written_ >= layout_.n_chunks) throw Error(fmt::format("{}: all {} chunks are written", path_, layout_.n_chunks));
  const auto record_size = size_t(log_prob_record_size(n_vocab_));
#pragma omp parallel for num_threads(std::max(1, n_threads)) schedule(static)
  for (int32_t i = 0; i < n_scored; ++i)
    encode_log_probs(scored_logits.subspan(size_t(i) * size_t(n_vocab_), size_t(n_vocab_)),
                     std::span<uint16_t>(records_).subspan(size_t(i) * record_size, record_size));
  out_.write(reinterpret_cast<const char*>(records_.data()), std::streamsize(records_.size() * sizeof(uint16_t)));
  if (!out_) throw Error(fmt::format("cannot write the KL-divergence base file {} (disk full?)", path_));
  ++chunks_written_;
}

void LogitsFileWriter::finish() {
  out_.close();
  if (out_.fail()) throw Error(fmt::format("cannot write the KL-divergence base file {}", path_));
  if (chunks_written_ == layout_.n_chunks) return;
  if (chunks_written_ == 0) {
    std::filesystem::remove(path_);
    return;
  }
  // Cut the token list to the chunks written and move the records up behind it.
  std::fstream file(path_, std::ios::binary | std::ios::in | std::ios::out);
  file.seekp(16);
  file.write(reinterpret_cast<const char*>(&chunks_written_), sizeof chunks_written_);
  const uint64_t old_start = kHeaderBytes + token_bytes(layout_, layout_.n_chunks);
  const uint64_t new_start = kHeaderBytes + token_bytes(layout_, chunks_written_);
  const uint64_t record_bytes = uint64_t(chunks_written_) * chunk_record_values(layout_, n_vocab_) * sizeof(uint16_t);
  std::vector<char> buffer(size_t(1) << 20);
  for (uint64_t done = 0; done < record_bytes && file;) {
    const auto n = std::streamsize(std::min<uint64_t>(buffer.size(), record_bytes - done));
    file.seekg(std::streamoff(old_start + done));
    file.read(buffer.data(), n);
    file.seekp(std::streamoff(new_start + done));
    file.write(buffer.data(), n);
    done += uint64_t(n);
  }
  file.close();
  if (file.fail()) throw Error(fmt::format("cannot shorten the KL-divergence base file {}", path_));
  std::filesystem::resize_file(path_, new_start + record_bytes);
}

// --- Reader --------------------------------------------------------------------------------

LogitsFileReader::LogitsFileReader(std::string path) : path_(std::move(path)) {
  std::error_code error;
  const uint64_t file_size = std::filesystem::file_size(path_, error);
  if (error) throw Error(fmt::format("cannot open the KL-divergence base file {}: {}", path_, error.message()));
  in_.open(path_, std::ios::binary);
  if (!in_) throw Error(fmt::format("cannot open the KL-divergence base file {}", path_));
  char magic[8] = {};
  uint32_t n_ctx = 0;
  if (file_size < kHeaderBytes)
    throw Error(fmt::format("{}: {} bytes, shorter than the {}-byte header of a KL-divergence base file", path_,
                            file_size, kHeaderBytes));
  in_.read(magic, sizeof magic);
  in_.read(reinterpret_cast<char*>(&n_ctx), sizeof n_ctx);
  in_.read(reinterpret_cast<char*>(&header_.n_vocab), sizeof header_.n_vocab);
  in_.read(reinterpret_cast<char*>(&header_.n_chunks), sizeof header_.n_chunks);
  if (!in_) throw Error(fmt::format("{}: cannot read the header", path_));
  if (std::memcmp(magic, kLogitsFileMagic, sizeof magic) != 0)
    throw Error(fmt::format("{} is not a KL-divergence base file (it does not start with \"_logits_\")", path_));
  if (n_ctx < 4 || n_ctx > uint32_t(INT32_MAX) || n_ctx % 2 != 0)
    throw Error(fmt::format("{}: n_ctx {} in the header is not an even number of at least 4", path_, n_ctx));
  header_.n_ctx = int32_t(n_ctx);
  if (header_.n_vocab <= 0) throw Error(fmt::format("{}: n_vocab {} in the header is not positive", path_, header_.n_vocab));
  if (header_.n_chunks <= 0)
    throw Error(fmt::format("{}: n_chunks {} in the header is not positive", path_, header_.n_chunks));

  // Every factor is below 2^32, so the size fits in 128 bits; compare before allocating anything.
  const ChunkLayout layout = header_.layout();
  const unsigned __int128 expected = (unsigned __int128)kHeaderBytes + token_bytes(layout, header_.n_chunks) +
                                     (unsigned __int128)header_.n_chunks * chunk_record_values(layout, header_.n_vocab) *
                                         sizeof(uint16_t);
  if (expected != file_size)
    throw Error(fmt::format("{}: {} bytes, but {} chunks of {} tokens with {} log-probs per position take {} bytes "
                            "(truncated or corrupt)",
                            path_, file_size, header_.n_chunks, header_.n_ctx, header_.n_vocab,
                            expected > UINT64_MAX ? std::string("more than 2^64") : std::to_string(uint64_t(expected))));

  tokens_.resize(size_t(header_.n_chunks) * size_t(header_.n_ctx));
  in_.read(reinterpret_cast<char*>(tokens_.data()), std::streamsize(tokens_.size() * sizeof(TokenId)));
  if (!in_) throw Error(fmt::format("{}: cannot read the token list", path_));
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (tokens_[i] < 0 || tokens_[i] >= header_.n_vocab)
      throw Error(fmt::format("{}: token {} is id {}, outside the file's vocabulary of {}", path_, i, tokens_[i],
                              header_.n_vocab));
  records_.resize(chunk_record_values(layout, header_.n_vocab));
}

std::span<const uint16_t> LogitsFileReader::read_chunk(int32_t index) {
  if (index < 0 || index >= header_.n_chunks)
    throw Error(fmt::format("{}: chunk {} is outside 0..{}", path_, index, header_.n_chunks - 1));
  const uint64_t chunk_bytes = records_.size() * sizeof(uint16_t);
  in_.seekg(std::streamoff(kHeaderBytes + token_bytes(header_.layout(), header_.n_chunks) + uint64_t(index) * chunk_bytes));
  in_.read(reinterpret_cast<char*>(records_.data()), std::streamsize(chunk_bytes));
  if (!in_) throw Error(fmt::format("{}: cannot read the log-probs of chunk {}", path_, index));
  return records_;
}

// --- KL divergence -------------------------------------------------------------------------

KldPosition compare_position(std::span<const float> logits, std::span<const uint16_t> base_record, TokenId target) {
  const size_t n_vocab = logits.size();
  float max_logit = logits[0];
  size_t top = 0;
  for (size_t i = 1; i < n_vocab; ++i)
    if (logits[i] > max_logit) max_logit = logits[i], top = i;
  double sum = 0.0;
  for (const float logit : logits) sum += std::exp(logit - max_logit);
  const double log_norm = double(max_logit) + std::log(sum);  // log q(i) = logits[i] - log_norm

  KldPosition result;
  result.nll = log_norm - double(logits[size_t(target)]);
  result.nll_base = -double(decoded_log_prob(base_record, target));
  const float scale = record_float(base_record, 0);
  const float min_log_prob = record_float(base_record, 1);
  const uint16_t* quantized = base_record.data() + 4;
  size_t top_base = 0;
  float top_base_log_prob = 0;
  for (size_t i = 0; i < n_vocab; ++i) {
    const float log_prob_base = scale * float(quantized[i]) + min_log_prob;
    if (i == 0 || log_prob_base > top_base_log_prob) top_base_log_prob = log_prob_base, top_base = i;
    if (log_prob_base > -kLogProbRange)
      result.kld += std::exp(double(log_prob_base)) * (double(log_prob_base) - (double(logits[i]) - log_norm));
  }
  result.same_top = top == top_base;
  result.p_diff = std::exp(-result.nll) - std::exp(-result.nll_base);
  return result;
}

std::vector<KldPosition> compare_chunk(std::span<const float> scored_logits, std::span<const uint16_t> base_records,
                                       std::span<const TokenId> chunk, const ChunkLayout& layout, int32_t n_vocab,
                                       int n_threads) {
  const int32_t n_scored = layout.n_scored();
  const int32_t first = layout.first_scored();
  const auto record_size = size_t(log_prob_record_size(n_vocab));
  if (n_vocab <= 0 || scored_logits.size() != size_t(n_scored) * size_t(n_vocab) ||
      base_records.size() != size_t(n_scored) * record_size || chunk.size() != size_t(layout.n_ctx))
    throw Error(fmt::format("compare_chunk: sizes do not match {} scored positions of {} tokens", n_scored, n_vocab));
  for (int32_t i = 0; i < n_scored; ++i) {
    const TokenId target = chunk[size_t(first + i + 1)];
    if (target < 0 || target >= n_vocab)
      throw Error(fmt::format("token id {} is outside the vocabulary (0..{})", target, n_vocab - 1));
  }
  std::vector<KldPosition> positions(static_cast<size_t>(n_scored));
#pragma omp parallel for num_threads(std::max(1, n_threads)) schedule(static)
  for (int32_t i = 0; i < n_scored; ++i)
    positions[size_t(i)] = compare_position(scored_logits.subspan(size_t(i) * size_t(n_vocab), size_t(n_vocab)),
                                            base_records.subspan(size_t(i) * record_size, record_size),
                                            chunk[size_t(first + i + 1)]);
  return positions;
}

void KldStats::add(const KldPosition& p) {
  ++count_;
  n_same_top_ += p.same_top ? 1 : 0;
  sum_nll_ += p.nll, sum_nll2_ += p.nll * p.nll;
  sum_nll_base_ += p.nll_base, sum_nll_base2_ += p.nll_base * p.nll_base;
  sum_nll_nll_base_ += p.nll * p.nll_base;
  sum_kld_ += p.kld, sum_kld2_ += p.kld * p.kld;
  const double p_diff2 = p.p_diff * p.p_diff;
  sum_p_diff_ += p.p_diff, sum_p_diff2_ += p_diff2, sum_p_diff4_ += p_diff2 * p_diff2;
  kld_values_.push_back(p.kld);
  p_diff_values_.push_back(p.p_diff);
}

namespace {

// llama-perplexity's mean and its standard error (0 for ten values or fewer).
ValueWithUncertainty mean_and_uncertainty(double sum, double sum_squares, int64_t count) {
  if (count < 1) return {};
  const double mean = sum / double(count);
  const double variance = sum_squares / double(count) - mean * mean;
  return {mean, variance > 0 && count > 10 ? std::sqrt(variance / double(count - 1)) : 0.0};
}

double covariance_of_means(double sum_a, double sum_b, double sum_ab, int64_t count) {
  if (count < 10) return 0.0;
  const double n = double(count);
  return (sum_ab / n - (sum_a / n) * (sum_b / n)) / (n - 1);
}

double median(std::span<const double> sorted) {
  const size_t n = sorted.size();
  if (n == 0) return 0.0;
  return n % 2 == 0 ? 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]) : sorted[n / 2];
}

}  // namespace

double percentile(std::span<const double> sorted_values, double fraction) {
  if (sorted_values.empty()) return 0.0;
  if (fraction <= 0) return sorted_values.front();
  if (fraction >= 1) return sorted_values.back();
  const double position = fraction * double(sorted_values.size() - 1);
  const auto below = size_t(position);
  const double weight = position - double(below);
  const size_t above = std::min(below + 1, sorted_values.size() - 1);
  return (1 - weight) * sorted_values[below] + weight * sorted_values[above];
}

KldSummary KldStats::summary() const {
  KldSummary s;
  s.n_positions = count_;
  if (count_ == 0) return s;
  const ValueWithUncertainty log_ppl = mean_and_uncertainty(sum_nll_, sum_nll2_, count_);
  const ValueWithUncertainty log_ppl_base = mean_and_uncertainty(sum_nll_base_, sum_nll_base2_, count_);
  s.ppl = {std::exp(log_ppl.value), std::exp(log_ppl.value) * log_ppl.uncertainty};
  s.ppl_base = {std::exp(log_ppl_base.value), std::exp(log_ppl_base.value) * log_ppl_base.uncertainty};
  const double covariance = covariance_of_means(sum_nll_, sum_nll_base_, sum_nll_nll_base_, count_);
  const double ratio_variance = log_ppl.uncertainty * log_ppl.uncertainty +
                                log_ppl_base.uncertainty * log_ppl_base.uncertainty - 2.0 * covariance;
  s.ln_ppl_ratio = {log_ppl.value - log_ppl_base.value, std::sqrt(std::max(0.0, ratio_variance))};
  s.ppl_ratio = {std::exp(s.ln_ppl_ratio.value), std::exp(s.ln_ppl_ratio.value) * s.ln_ppl_ratio.uncertainty};

  s.mean_kld = mean_and_uncertainty(sum_kld_, sum_kld2_, count_);
  s.mean_p_diff = mean_and_uncertainty(sum_p_diff_, sum_p_diff2_, count_);
  const ValueWithUncertainty p_diff_mse = mean_and_uncertainty(sum_p_diff2_, sum_p_diff4_, count_);
  const double rms = std::sqrt(p_diff_mse.value);
  s.rms_p_diff = {rms, rms > 0 ? 0.5 / rms * p_diff_mse.uncertainty : 0.0};
  const double same_top = double(n_same_top_) / double(count_);
  s.same_top = {same_top, count_ > 1 ? std::sqrt(same_top * (1 - same_top) / double(count_ - 1)) : 0.0};
  return s;
}

KldPercentiles KldStats::percentiles() const {
  KldPercentiles s;
  if (count_ == 0) return s;
  std::vector<double> kld = kld_values_, p_diff = p_diff_values_;
  std::sort(kld.begin(), kld.end());
  std::sort(p_diff.begin(), p_diff.end());
  s.median_kld = median(kld);
  s.p99_kld = percentile(kld, 0.99);
  s.max_kld = kld.back();
  s.median_p_diff = median(p_diff);
  s.max_p_diff = p_diff.back();
  s.min_p_diff = p_diff.front();
  return s;
}

}  // namespace slm::perplexity
