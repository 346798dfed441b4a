// The library half of slm-perplexity (slm/perplexity.hpp): chunking, NLL statistics,
// llama-perplexity's KL-divergence base file (written, read back, and refused when corrupt)
// and the KL-divergence statistics.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "slm/error.hpp"
#include "slm/perplexity.hpp"

namespace {

namespace ppl = slm::perplexity;
namespace fs = std::filesystem;

fs::path temp_file(const std::string& name) {
  const auto* test = testing::UnitTest::GetInstance()->current_test_info();
  return fs::temp_directory_path() /
         ("slm-test-perplexity-" + std::to_string(getpid()) + "-" + test->name() + "-" + name);
}

std::vector<float> random_logits(std::mt19937& rng, size_t n, float spread) {
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> logits(n);
  for (float& logit : logits) logit = normal(rng);
  return logits;
}

std::vector<double> log_softmax(std::span<const float> logits) {
  const double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (const float l : logits) sum += std::exp(l - max);
  std::vector<double> out;
  for (const float l : logits) out.push_back(l - max - std::log(sum));
  return out;
}

std::vector<uint16_t> encode(std::span<const float> logits) {
  std::vector<uint16_t> record(size_t(ppl::log_prob_record_size(int32_t(logits.size()))));
  ppl::encode_log_probs(logits, record);
  return record;
}

// --- Chunking and NLL ---------------------------------------------------------------------

TEST(PerplexityChunks, ChunkCountIsTokensOverContextCappedByMaxChunks) {
  const ppl::ChunkLayout layout = ppl::plan_chunks(1300, 512, -1);
  EXPECT_EQ(layout.n_ctx, 512);
  EXPECT_EQ(layout.n_chunks, 2);
  EXPECT_EQ(layout.first_scored(), 256);
  EXPECT_EQ(layout.n_scored(), 255);  // positions 256..510 predict tokens 257..511
  EXPECT_EQ(ppl::plan_chunks(1300, 512, 1).n_chunks, 1);
  EXPECT_EQ(ppl::plan_chunks(512, 512, 20).n_chunks, 1);
}

TEST(PerplexityChunks, RejectsShortTextsAndBadContextSizes) {
  EXPECT_THROW(ppl::plan_chunks(511, 512, -1), slm::Error);
  EXPECT_THROW(ppl::plan_chunks(5000, 511, -1), slm::Error);  // odd
  EXPECT_THROW(ppl::plan_chunks(5000, 2, -1), slm::Error);    // no position left to score
  EXPECT_THROW(ppl::plan_chunks(5000, 0, -1), slm::Error);
  EXPECT_THROW(ppl::plan_chunks(5000, -8, -1), slm::Error);
  EXPECT_THROW(ppl::plan_chunks(5000, 512, 0), slm::Error);
}

TEST(PerplexityChunks, EachChunkStartsWithBos) {
  const std::vector<slm::TokenId> tokens = {1, 10, 11, 12, 13, 14, 15, 16, 17};
  const ppl::ChunkLayout layout = ppl::plan_chunks(tokens.size(), 4, -1);
  EXPECT_EQ(layout.n_chunks, 2);
  EXPECT_EQ(ppl::chunk_tokens(tokens, layout, 0, 1), (std::vector<slm::TokenId>{1, 10, 11, 12}));
  EXPECT_EQ(ppl::chunk_tokens(tokens, layout, 1, 1), (std::vector<slm::TokenId>{1, 14, 15, 16}));
  EXPECT_EQ(ppl::chunk_tokens(tokens, layout, 1, -1), (std::vector<slm::TokenId>{13, 14, 15, 16}));
  EXPECT_THROW(ppl::chunk_tokens(tokens, layout, 2, 1), slm::Error);
}

TEST(PerplexityNll, IsMinusTheLogSoftmaxOfTheTarget) {
  const std::vector<float> logits = {0.0f, std::log(3.0f), -100.0f};
  EXPECT_NEAR(ppl::token_nll(logits, 1), -std::log(0.75), 1e-7);
  EXPECT_NEAR(ppl::token_nll(logits, 0), -std::log(0.25), 1e-7);
  EXPECT_THROW(ppl::token_nll(logits, 3), slm::Error);
}

TEST(PerplexityNll, ScoreChunkScoresTheSecondHalfAgainstTheNextToken) {
  // n_ctx 8: rows 4, 5, 6 predict tokens 5, 6, 7; each row puts all its mass on one token.
  const ppl::ChunkLayout layout{8, 1};
  const std::vector<slm::TokenId> chunk = {1, 0, 0, 0, 0, 2, 3, 0};
  std::vector<float> logits(3 * 4, -50.0f);
  logits[0 * 4 + 2] = 50.0f;  // row 4 predicts token 2: right
  logits[1 * 4 + 1] = 50.0f;  // row 5 predicts token 1, but token 3 follows: 100 nats
  logits[2 * 4 + 0] = 50.0f;  // row 6 predicts token 0: right
  const std::vector<double> nll = ppl::score_chunk(logits, chunk, layout, 4, 2);
  ASSERT_EQ(nll.size(), 3u);
  EXPECT_NEAR(nll[0], 0.0, 1e-9);
  EXPECT_NEAR(nll[1], 100.0, 1e-4);
  EXPECT_NEAR(nll[2], 0.0, 1e-9);
}

TEST(PerplexityStats, PplAndStandardErrorFollowLlamaPerplexity) {
  ppl::NllStats stats;
  for (const double nll : {1.0, 2.0, 3.0}) stats.add(nll);
  // mean 2, mean square 14/3: variance 2/3, sigma(ln PPL) = sqrt((2/3) / (3 - 1))
  EXPECT_NEAR(stats.ppl(), std::exp(2.0), 1e-12);
  EXPECT_NEAR(stats.ppl_stderr(), std::exp(2.0) * std::sqrt(1.0 / 3.0), 1e-12);
  ppl::NllStats one;
  one.add(2.0);
  EXPECT_EQ(one.ppl_stderr(), 0.0);
}

// --- Log-prob records ---------------------------------------------------------------------

TEST(LogProbRecord, SizeIsVocabRoundedToEvenPlusFour) {
  EXPECT_EQ(ppl::log_prob_record_size(512), 516);
  EXPECT_EQ(ppl::log_prob_record_size(5), 10);
  EXPECT_EQ(ppl::log_prob_record_size(32000), 32004);
}

TEST(LogProbRecord, DecodesToTheLogProbsWithinHalfAStep) {
  std::mt19937 rng(7);
  for (const float spread : {0.5f, 3.0f, 10.0f}) {
    const std::vector<float> logits = random_logits(rng, 513, spread);
    const std::vector<uint16_t> record = encode(logits);
    const std::vector<double> exact = log_softmax(logits);
    float scale = 0;
    std::memcpy(&scale, record.data(), sizeof scale);
    const double top = *std::max_element(exact.begin(), exact.end());
    for (size_t i = 0; i < logits.size(); ++i) {
      const double decoded = ppl::decoded_log_prob(record, slm::TokenId(i));
      if (exact[i] > top - 16.0) {
        EXPECT_NEAR(decoded, exact[i], 1.5 * scale) << "token " << i << " spread " << spread;
      } else {
        EXPECT_NEAR(decoded, top - 16.0, 1e-4) << "clamped token " << i;  // stored as min_log_prob
      }
    }
    EXPECT_EQ(record.back(), 0) << "padding of an odd vocabulary";
  }
}

TEST(LogProbRecord, EqualLogitsGiveTheUniformLogProb) {
  const std::vector<float> logits(8, 2.5f);
  const std::vector<uint16_t> record = encode(logits);
  for (slm::TokenId i = 0; i < 8; ++i) EXPECT_NEAR(ppl::decoded_log_prob(record, i), -std::log(8.0), 1e-6);
}

TEST(LogProbRecord, OnlyTheTopTokenGetsTheTopCode) {
  // The runner-up is closer to the top than half a quantization step (16 / 65535 / 2).
  std::vector<float> logits = {0.0f, 5.0f, 5.0f + 1e-5f, -11.0f};
  const std::vector<uint16_t> record = encode(logits);
  EXPECT_EQ(record[4 + 2], 65535);
  EXPECT_EQ(record[4 + 1], 65534);
  const ppl::KldPosition self = ppl::compare_position(logits, record, 0);
  EXPECT_TRUE(self.same_top);
}

// --- The base file --------------------------------------------------------------------------

struct BaseFile {
  ppl::ChunkLayout layout{8, 3};
  int32_t n_vocab = 5;
  std::vector<slm::TokenId> tokens;
  std::vector<std::vector<float>> chunk_logits;  // per chunk: n_scored rows of n_vocab
};

BaseFile make_base(std::mt19937& rng) {
  BaseFile base;
  for (int i = 0; i < base.layout.n_ctx * base.layout.n_chunks + 3; ++i) base.tokens.push_back(i % base.n_vocab);
  for (int c = 0; c < base.layout.n_chunks; ++c)
    base.chunk_logits.push_back(random_logits(rng, size_t(base.layout.n_scored() * base.n_vocab), 2.0f));
  return base;
}

void write_base(const fs::path& path, const BaseFile& base, int32_t n_chunks_written) {
  ppl::LogitsFileWriter writer(path.string(), base.n_vocab, base.layout, base.tokens);
  for (int c = 0; c < n_chunks_written; ++c) writer.write_chunk(base.chunk_logits[size_t(c)], 2);
  writer.finish();
}

TEST(LogitsFile, RoundTripsHeaderTokensAndRecords) {
  std::mt19937 rng(3);
  const BaseFile base = make_base(rng);
  const fs::path path = temp_file("base.kld");
  write_base(path, base, base.layout.n_chunks);
  const int64_t record_size = ppl::log_prob_record_size(base.n_vocab);
  EXPECT_EQ(fs::file_size(path), 20u + 3 * 8 * 4 + 3 * 3 * record_size * 2);

  ppl::LogitsFileReader reader(path.string());
  EXPECT_EQ(reader.header().n_ctx, 8);
  EXPECT_EQ(reader.header().n_vocab, 5);
  EXPECT_EQ(reader.header().n_chunks, 3);
  EXPECT_EQ(reader.tokens(), std::vector<slm::TokenId>(base.tokens.begin(), base.tokens.begin() + 24));
  for (int32_t c = 0; c < 3; ++c) {
    const std::span<const uint16_t> records = reader.read_chunk(c);
    for (int32_t row = 0; row < 3; ++row) {
      const std::span<const float> logits(base.chunk_logits[size_t(c)].data() + row * 5, 5);
      const std::vector<uint16_t> expected = encode(logits);
      EXPECT_TRUE(std::equal(expected.begin(), expected.end(), records.begin() + row * record_size))
          << "chunk " << c << " row " << row;
    }
  }
  std::ifstream raw(path, std::ios::binary);
  char magic[8];
  raw.read(magic, 8);
  EXPECT_EQ(std::string(magic, 8), "_logits_");
  fs::remove(path);
}

TEST(LogitsFile, AnUnfinishedRunIsCutToTheChunksWritten) {
  std::mt19937 rng(4);
  const BaseFile base = make_base(rng);
  const fs::path path = temp_file("cut.kld");
  write_base(path, base, 2);
  ppl::LogitsFileReader reader(path.string());
  EXPECT_EQ(reader.header().n_chunks, 2);
  EXPECT_EQ(reader.tokens().size(), 16u);
  const std::span<const uint16_t> records = reader.read_chunk(1);
  const std::vector<uint16_t> expected = encode(std::span<const float>(base.chunk_logits[1]).first(5));
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), records.begin()));
  fs::remove(path);
}

// Writes a valid base file, lets `corrupt` damage its bytes, and expects the reader to refuse
// it with a message holding `expected_message`.
void expect_refused(const std::function<void(std::string&)>& corrupt, const std::string& expected_message) {
  std::mt19937 rng(5);
  const BaseFile base = make_base(rng);
  const fs::path path = temp_file("bad.kld");
  write_base(path, base, base.layout.n_chunks);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  corrupt(bytes);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  try {
    ppl::LogitsFileReader reader(path.string());
    ADD_FAILURE() << "accepted a corrupt file; expected: " << expected_message;
  } catch (const slm::Error& e) {
    EXPECT_NE(std::string(e.what()).find(expected_message), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line";
  }
  fs::remove(path);
}

void put_int32(std::string& bytes, size_t offset, int32_t value) { std::memcpy(bytes.data() + offset, &value, 4); }

TEST(LogitsFile, RefusesCorruptFiles) {
  expect_refused([](std::string& b) { b.resize(12); }, "shorter than the 20-byte header");
  expect_refused([](std::string& b) { b[0] = 'X'; }, "not a KL-divergence base file");
  expect_refused([](std::string& b) { b.pop_back(); }, "truncated or corrupt");
  expect_refused([](std::string& b) { b.push_back('\0'); }, "truncated or corrupt");
  expect_refused([](std::string& b) { put_int32(b, 8, 7); }, "n_ctx 7");
  expect_refused([](std::string& b) { put_int32(b, 8, 0); }, "n_ctx 0");
  expect_refused([](std::string& b) { put_int32(b, 12, -5); }, "n_vocab -5");
  expect_refused([](std::string& b) { put_int32(b, 16, 0); }, "n_chunks 0");
  // Counts whose product is astronomically large: refused by size, before any allocation.
  expect_refused([](std::string& b) { put_int32(b, 8, 0x7ffffffe), put_int32(b, 16, 0x7fffffff); },
                 "truncated or corrupt");
  expect_refused([](std::string& b) { put_int32(b, 12, 0x7fffffff); }, "truncated or corrupt");
  expect_refused([](std::string& b) { put_int32(b, 20 + 4 * 3, 99); }, "token 3 is id 99");
}

TEST(LogitsFile, MissingFileIsAnError) {
  EXPECT_THROW(ppl::LogitsFileReader("/nonexistent/dir/base.kld"), slm::Error);
}

// --- KL divergence -------------------------------------------------------------------------

TEST(KlDivergence, AModelAgainstItsOwnRecordIsZeroUpToQuantization) {
  std::mt19937 rng(11);
  ppl::KldStats stats;
  for (int i = 0; i < 1000; ++i) {
    const std::vector<float> logits = random_logits(rng, 512, 3.0f);
    // A target the file resolves: log-probs more than 16 below the top one are all stored as one value.
    slm::TokenId target = slm::TokenId(i % 512);
    while (log_softmax(logits)[size_t(target)] < -12.0) target = (target + 1) % 512;
    const ppl::KldPosition p = ppl::compare_position(logits, encode(logits), target);
    EXPECT_LT(std::fabs(p.kld), 1e-4);  // half-step log-prob errors (<= 1.2e-4), partly cancelling
    EXPECT_NEAR(p.nll, p.nll_base, 1.3e-4);
    stats.add(p);
  }
  const ppl::KldSummary s = stats.summary();
  EXPECT_LT(std::fabs(s.mean_kld.value), 1e-6);
  EXPECT_EQ(s.same_top.value, 1.0);
  EXPECT_NEAR(s.ppl_ratio.value, 1.0, 1e-4);
}

TEST(KlDivergence, MatchesTheAnalyticKlOfTwoDistributions) {
  std::mt19937 rng(12);
  const std::vector<float> base_logits = random_logits(rng, 64, 1.5f);
  std::vector<float> logits = base_logits;
  for (float& l : logits) l += std::normal_distribution<float>(0.0f, 0.3f)(rng);
  const std::vector<double> p = log_softmax(base_logits), q = log_softmax(logits);
  double expected = 0;
  for (size_t i = 0; i < p.size(); ++i) expected += std::exp(p[i]) * (p[i] - q[i]);
  const ppl::KldPosition position = ppl::compare_position(logits, encode(base_logits), 3);
  EXPECT_NEAR(position.kld, expected, 2e-4);
  EXPECT_NEAR(position.p_diff, std::exp(q[3]) - std::exp(p[3]), 2e-4);
}

TEST(KlDivergence, PercentilesInterpolateLikeLlamaPerplexity) {
  const std::vector<double> values = {0.0, 1.0, 2.0, 3.0, 4.0};
  EXPECT_DOUBLE_EQ(ppl::percentile(values, 0.5), 2.0);
  EXPECT_DOUBLE_EQ(ppl::percentile(values, 0.99), 3.96);
  EXPECT_DOUBLE_EQ(ppl::percentile(values, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(ppl::percentile(values, 0.0), 0.0);

  ppl::KldStats stats;
  for (const double kld : {0.4, 0.1, 0.3, 0.2}) stats.add({kld, 1.0, 1.0, kld - 0.25, kld > 0.15});
  const ppl::KldPercentiles p = stats.percentiles();
  EXPECT_DOUBLE_EQ(p.median_kld, 0.25);
  EXPECT_DOUBLE_EQ(p.max_kld, 0.4);
  EXPECT_NEAR(p.p99_kld, 0.397, 1e-12);
  const ppl::KldSummary s = stats.summary();
  EXPECT_DOUBLE_EQ(s.mean_kld.value, 0.25);
  EXPECT_DOUBLE_EQ(s.same_top.value, 0.75);
  EXPECT_NEAR(s.mean_p_diff.value, 0.0, 1e-12);
  EXPECT_NEAR(s.ppl.value, std::exp(1.0), 1e-12);
}

}  // namespace
