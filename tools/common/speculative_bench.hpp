// slm-bench --model-draft / --lookup-ngram: greedy generation with speculative decoding against
// plain greedy generation of the same prompt, in the same run (runs alternate, so that a shared
// machine's drift hits both alike), with the acceptance rate and a check that the two outputs
// are identical. With --draft-vocab, the whole draft head and the cut one alternate too.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "slm/speculative.hpp"

namespace slm::tools {

struct SpeculativeBenchOptions {
  std::string draft_path;            // --model-draft; "" for prompt lookup alone
  SpeculativeOptions speculative;    // --draft-max, --draft-min, --draft-p-min, --draft-vocab, --lookup-ngram
  std::string prompt_file;           // --spec-prompt-file: the prompt's text; "" for random tokens
  int n_prompt = 64;                 // --spec-prompt-tokens: random prompt tokens
  // --spec-extraction: an extraction-style prompt built from the random one, X: a "document" that
  // holds X and the model's own greedy continuation G of X (as long as the test), then X again,
  // so that a model whose output depends mostly on recent tokens continues with G, a span of its
  // prompt (what prompt lookup is for).
  bool extraction = false;
  int extraction_edit_every = 0;     // --spec-extraction-edits N: G's copy in the document has every
                                     // N-th token replaced by a random one (0: an exact copy)
  bool enabled() const { return !draft_path.empty() || speculative.lookup_ngram > 0; }
};

struct SpeculativeBenchResult {
  std::string model_filename, draft_filename;
  int n_threads = 0, n_prompt = 0, n_gen = 0, lookup_ngram = 0;
  std::vector<double> plain_ts, speculative_ts;  // generated tokens after the first per second, per run
  SpeculationStats stats;                        // of the last speculative run
  bool identical = true;                         // every speculative output equal to the plain one
  // Adaptive k's measured costs after the last run, in target tokens: a draft token, and a
  // verification row past the first (the slope over 4 rows); 0 without a draft model.
  double draft_token_cost = 0.0, row_cost = 0.0;
  int draft_vocab = 0;                           // --draft-vocab (0: the whole head)
  double in_draft_vocab = 0.0;                   // share of the plain output's tokens the cut head keeps
};

// One result; with a draft model and --draft-vocab, two from one alternation (plain, the whole
// draft head, the cut one, in turn): the whole head's first.
std::vector<SpeculativeBenchResult> run_speculative_bench(const std::shared_ptr<const Model>& model,
                                                          const std::string& model_path,
                                                          const std::shared_ptr<const Model>& draft,
                                                          const SpeculativeBenchOptions& o, int n_threads, int n_gen,
                                                          int repetitions, uint32_t seed, KvType kv_type);

void print_speculative_table(const std::vector<SpeculativeBenchResult>& results);
nlohmann::ordered_json speculative_json(const std::vector<SpeculativeBenchResult>& results);

}  // namespace slm::tools
