// Constrained decoding: a grammar decides which tokens the model may pick next.
//
//   Grammar g = compile_gbnf(text);                  // llama.cpp's GBNF, root rule "root"
//   Grammar g = grammar_from_json_schema(schema);    // a JSON Schema (text), see below
//   Grammar g = json_object_grammar();               // any JSON object (response_format json_object)
//   auto vocab = GrammarVocabulary::from_tokenizer(tokenizer);   // once per model; shareable
//   GrammarMatcher m(g, vocab);
//   m.fill_mask(mask); ... sampler.sample(logits, &mask); m.accept_token(t); m.is_complete();
//
// The matcher works on bytes: every token is the bytes of its piece, so a token may span
// terminals or end inside a UTF-8 character. Character classes are compiled to UTF-8 byte
// sequences. Special tokens (control/unknown) are never allowed, except the end-of-generation
// tokens, which are allowed exactly where the grammar may end.
//
// Errors (parse errors with line and column, left recursion, unsupported schema keywords,
// size limits) are slm::Error with a one-line message.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slm/sampler.hpp"
#include "slm/tokenizer.hpp"

namespace slm {

namespace grammar {
struct CompiledGrammar;
struct MatcherCache;
}  // namespace grammar

// An immutable compiled grammar; cheap to copy and safe to share between threads.
struct Grammar {
  std::shared_ptr<const grammar::CompiledGrammar> compiled;
  std::string gbnf;  // the GBNF text it was compiled from (for a schema: the generated grammar)
};

// Limits on hostile input: a grammar beyond them is refused with an error.
struct GrammarLimits {
  size_t max_text_bytes = 1 << 20;   // GBNF text
  int32_t max_nesting = 64;          // parentheses, and JSON Schema nesting
  size_t max_elements = 1 << 20;     // compiled grammar size (after repetitions are expanded)
  int32_t max_repetition = 10000;    // the largest m or n in {m,n}
};

Grammar compile_gbnf(std::string_view text, const GrammarLimits& limits = {});

// JSON Schema (draft 2020-12 subset) -> GBNF -> Grammar. Supported: type (and arrays of types),
// properties/required/additionalProperties (absent = true, as the schema says), items,
// prefixItems, minItems/maxItems, enum, const, anyOf/oneOf, allOf of mergeable object schemas,
// $ref to "#", "#/$defs/..." and "#/definitions/..." (recursion included), minLength/maxLength,
// minimum/maximum/exclusiveMinimum/exclusiveMaximum for integers, pattern (see
// json_schema_to_gbnf in lib/grammar/json_schema.cpp for the regex subset) and the formats
// date, time, date-time, uuid and email. Annotations (title, description, examples, default,
// $schema, $id, $comment, deprecated, readOnly, writeOnly) are ignored. Any other keyword is an
// error naming it. Output is compact JSON: at most one space after ':' and ',' and none
// elsewhere, so that a model cannot wander off in whitespace.
Grammar grammar_from_json_schema(std::string_view schema_json, const GrammarLimits& limits = {});
std::string json_schema_to_gbnf(std::string_view schema_json, const GrammarLimits& limits = {});
Grammar json_object_grammar();

// Every token's bytes, in a trie, built once per tokenizer (immutable, shareable).
struct GrammarVocabulary;
std::shared_ptr<const GrammarVocabulary> make_grammar_vocabulary(const Tokenizer& tokenizer);
// The same from plain pieces (tests): pieces[i] is token i's bytes; an empty piece is never
// allowed. end_tokens are allowed only where the grammar may end.
std::shared_ptr<const GrammarVocabulary> make_grammar_vocabulary(std::span<const std::string> pieces,
                                                                 std::span<const TokenId> end_tokens);

// One bit per token of the vocabulary: bit i set = token i allowed.
struct TokenMask {
  std::vector<uint64_t> words;
  int32_t n_tokens = 0;
  bool allows(TokenId id) const { return id >= 0 && id < n_tokens && (words[size_t(id) >> 6] >> (id & 63) & 1); }
};

// The state of one generation under a grammar. Not thread-safe; one per sequence. It caches
// per-state work (the lazily built byte automaton and the masks of states already seen), so a
// grammar's repeated states (inside a string, between items) cost a lookup.
class GrammarMatcher {
 public:
  GrammarMatcher(Grammar grammar, std::shared_ptr<const GrammarVocabulary> vocabulary);
  GrammarMatcher(GrammarMatcher&&) noexcept;
  GrammarMatcher& operator=(GrammarMatcher&&) noexcept;
  ~GrammarMatcher();

  // Advances over one token. False (and no change) when the grammar does not allow it. An
  // end-of-generation token is accepted only where the grammar may end, and completes it.
  bool accept_token(TokenId token);
  // Advances over raw bytes (tests, prefilled text). False (and no change) if not allowed.
  bool accept_bytes(std::string_view bytes);
  // The allowed next tokens.
  void fill_mask(TokenMask& mask);
  bool can_end() const;      // the text so far is a complete sentence of the grammar
  bool is_complete() const;  // ...and nothing more may follow (or an end token was accepted)
  void reset();              // back to the start of the grammar (the caches are kept)

  int32_t n_vocab() const;

 private:
  std::unique_ptr<grammar::MatcherCache> cache_;
  int32_t state_ = 0;
  bool ended_ = false;
};

// Samples one token under a grammar: the mask is applied before the sampler chain (disallowed
// logits become -inf in `masked`). Should the sampler still return a disallowed token (its
// rounding fallback), the best allowed one is taken. Does not advance the matcher. `mask` and
// `masked` are the caller's buffers, reused between calls. Throws slm::Error when no token of
// the vocabulary may continue, or the logits are shorter than the grammar's vocabulary.
TokenId sample_with_grammar(Sampler& sampler, std::span<const float> logits, GrammarMatcher& grammar, TokenMask& mask,
                            std::vector<float>& masked);

}  // namespace slm
