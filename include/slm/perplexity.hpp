// Perplexity and KL divergence measured the way llama.cpp's llama-perplexity measures them,
// so that figures from slm and from llama.cpp can be compared directly.
//
// Chunking: the whole text is tokenized once (the model's BOS rule, no special-token parsing)
// and cut into n_chunks = min(--chunks, n_tokens / n_ctx) chunks of n_ctx tokens. Each chunk is
// evaluated from an empty cache with its first token replaced by BOS (when the vocabulary adds
// BOS). Only its second half is scored: the logits at positions n_ctx/2 .. n_ctx-2 against the
// tokens at n_ctx/2+1 .. n_ctx-1 (255 predictions per chunk for n_ctx 512), so that every
// scored prediction has seen at least half a context.
//
// KL divergence: a run can save the scored positions' log-probabilities in llama-perplexity's
// --kl-divergence-base file (format below); a second model is then compared against them.
#pragma once

#include <cstdint>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "slm/session.hpp"
#include "slm/tokenizer.hpp"

namespace slm::perplexity {

struct ChunkLayout {
  int32_t n_ctx = 0;
  int32_t n_chunks = 0;
  int32_t first_scored() const { return n_ctx / 2; }
  int32_t n_scored() const { return n_ctx - 1 - n_ctx / 2; }
};

// Throws slm::Error unless n_ctx is even and at least 4 (so that at least one position is scored).
void check_context_size(int64_t n_ctx);
// n_chunks = min(max_chunks, n_tokens / n_ctx), no limit when max_chunks < 0. Throws slm::Error
// for a bad n_ctx or a text of fewer than n_ctx tokens.
ChunkLayout plan_chunks(size_t n_tokens, int32_t n_ctx, int32_t max_chunks);

// The n_ctx tokens of chunk `index`, the first replaced by `bos` when bos >= 0.
std::vector<TokenId> chunk_tokens(std::span<const TokenId> tokens, const ChunkLayout& layout, int32_t index,
                                  TokenId bos);

// Evaluates one chunk from an empty cache and returns the logits of its scored positions:
// layout.n_scored() rows of n_vocab floats, valid until the session's next eval. The first half
// is evaluated without logits (nothing reads them).
std::span<const float> evaluate_chunk(Session& session, std::span<const TokenId> chunk, const ChunkLayout& layout);

// -log softmax(logits)[target] = logsumexp(logits) - logits[target], accumulated in double.
double token_nll(std::span<const float> logits, TokenId target);

// The NLL of every scored position of a chunk: row i of scored_logits against
// chunk[first_scored + i + 1]. Rows are spread over n_threads; the result does not depend on it.
std::vector<double> score_chunk(std::span<const float> scored_logits, std::span<const TokenId> chunk,
                                const ChunkLayout& layout, int32_t n_vocab, int n_threads);

// Running sums of per-token NLLs. The standard error is llama-perplexity's: with m and s2 the
// mean and the mean square of the NLLs over n tokens, sigma(ln PPL) = sqrt((s2 - m^2) / (n - 1))
// and the PPL's error is PPL * sigma(ln PPL).
struct NllStats {
  double sum = 0;
  double sum_squares = 0;
  int64_t count = 0;

  void add(double nll) { sum += nll, sum_squares += nll * nll, ++count; }
  double ppl() const;
  double ppl_stderr() const;  // 0 while fewer than two tokens or a non-positive variance
};

// ---------------------------------------------------------------------------------------------
// llama-perplexity's --kl-divergence-base file. All values little-endian:
//
//   char[8]   "_logits_"
//   uint32    n_ctx
//   int32     n_vocab
//   int32     n_chunks
//   int32     tokens[n_chunks * n_ctx]   the text as tokenized; chunk starts NOT replaced by BOS
//   then, chunk after chunk, one record per scored position (n_ctx - 1 - n_ctx/2 per chunk) of
//   record_size = 2 * ceil(n_vocab / 2) + 4 uint16:
//     float32   scale                     the first two uint16
//     float32   min_log_prob              the next two
//     uint16    q[n_vocab]                log p(i) = min_log_prob + scale * q[i]
//     uint16    0                         padding when n_vocab is odd
//
// With max and min the largest and smallest logit, min is raised to max - 16 (nothing less
// likely than e^-16 relative to the top token is kept), scale = (max - min) / 65535,
// min_log_prob = min - logsumexp(logits), and q[i] = round((logit_i - min) / scale), 0 for the
// logits at or below min. Decoded log-probabilities are within scale/2 <= 1.22e-4 of the true ones,
// except that slm gives the top code 65535 to the top token only (a runner-up within half a step
// is stored one step lower), so that the file's argmax is the model's; and log-probabilities more
// than 16 below the top one are all stored as min_log_prob, so a PPL recomputed from the file
// understates the true PPL wherever the correct token is that unlikely (random-weight models).
// ---------------------------------------------------------------------------------------------

inline constexpr char kLogitsFileMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};

// uint16 values per scored position.
int64_t log_prob_record_size(int32_t n_vocab);
// Quantizes one position's logits into a record of log_prob_record_size(logits.size()) values.
void encode_log_probs(std::span<const float> logits, std::span<uint16_t> record);
// The log-probability of `token` that a record stores.
float decoded_log_prob(std::span<const uint16_t> record, TokenId token);

struct LogitsFileHeader {
  int32_t n_ctx = 0;
  int32_t n_vocab = 0;
  int32_t n_chunks = 0;
  ChunkLayout layout() const { return {n_ctx, n_chunks}; }
};

// Writes a base file chunk by chunk, while perplexity is computed.
class LogitsFileWriter {
 public:
  // Writes the header and the tokens of the layout's chunks. Throws slm::Error when the file
  // cannot be written.
  LogitsFileWriter(std::string path, int32_t n_vocab, const ChunkLayout& layout, std::span<const TokenId> tokens);
  // Quantizes and appends the records of the next chunk (scored_logits from evaluate_chunk).
  void write_chunk(std::span<const float> scored_logits, int n_threads);
  // Flushes and closes. When fewer chunks were written than the header announced (a cancelled
  // run), the header and the token list are cut down to the chunks written, so the file stays
  // valid. Throws slm::Error on a write failure.
  void finish();
  int32_t chunks_written() const { return chunks_written_; }

 private:
  std::string path_;
  int32_t n_vocab_;
  ChunkLayout layout_;
  int32_t chunks_written_ = 0;
  std::ofstream out_;
  std::vector<uint16_t> records_;
};

// Reads a base file, trusting nothing in it: the magic, the counts against the file size
// (checked before anything is allocated) and every token id against n_vocab.
class LogitsFileReader {
 public:
  // Throws slm::Error naming the file and what is wrong.
  explicit LogitsFileReader(std::string path);
  const LogitsFileHeader& header() const { return header_; }
  const std::vector<TokenId>& tokens() const { return tokens_; }
  // The records of chunk `index` (n_scored * record_size uint16), read from the file.
  std::span<const uint16_t> read_chunk(int32_t index);

 private:
  std::string path_;
  LogitsFileHeader header_;
  std::vector<TokenId> tokens_;
  std::ifstream in_;
  std::vector<uint16_t> records_;
};

// ---------------------------------------------------------------------------------------------
// KL divergence of a model (Q) from the base (P) saved in a file, position by position.
// ---------------------------------------------------------------------------------------------

struct KldPosition {
  double kld = 0;        // sum over tokens with log p > -16 of p * (log p - log q)
  double nll = 0;        // -log q(target)
  double nll_base = 0;   // -log p(target), from the record
  double p_diff = 0;     // q(target) - p(target): llama-perplexity's Δp
  bool same_top = false; // argmax q == argmax p (first index on ties, as llama-perplexity)
};

KldPosition compare_position(std::span<const float> logits, std::span<const uint16_t> base_record, TokenId target);
// compare_position for every scored position of a chunk (records from LogitsFileReader::read_chunk).
std::vector<KldPosition> compare_chunk(std::span<const float> scored_logits, std::span<const uint16_t> base_records,
                                       std::span<const TokenId> chunk, const ChunkLayout& layout, int32_t n_vocab,
                                       int n_threads);

struct ValueWithUncertainty {
  double value = 0;
  double uncertainty = 0;
};

struct KldSummary {
  int64_t n_positions = 0;
  ValueWithUncertainty ppl, ppl_base, ppl_ratio, ln_ppl_ratio;  // ratio: PPL(Q) / PPL(base)
  ValueWithUncertainty mean_kld, mean_p_diff, rms_p_diff, same_top;  // same_top, p_diff: fractions
};

struct KldPercentiles {
  double median_kld = 0, p99_kld = 0, max_kld = 0;
  double median_p_diff = 0, max_p_diff = 0, min_p_diff = 0;
};

// The statistics llama-perplexity --kl-divergence prints, with its uncertainty formulas.
class KldStats {
 public:
  void add(const KldPosition& position);
  int64_t count() const { return count_; }
  KldSummary summary() const;          // cheap: from running sums
  KldPercentiles percentiles() const;  // sorts every value seen

 private:
  int64_t count_ = 0, n_same_top_ = 0;
  double sum_nll_ = 0, sum_nll2_ = 0, sum_nll_base_ = 0, sum_nll_base2_ = 0, sum_nll_nll_base_ = 0;
  double sum_kld_ = 0, sum_kld2_ = 0, sum_p_diff_ = 0, sum_p_diff2_ = 0, sum_p_diff4_ = 0;
  std::vector<double> kld_values_, p_diff_values_;
};

// The value at `fraction` of sorted values, interpolating linearly between neighbours.
double percentile(std::span<const double> sorted_values, double fraction);

}  // namespace slm::perplexity
