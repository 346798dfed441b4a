#include "lib/tokenizer/spm.hpp"

#include <algorithm>
#include <queue>

#include "lib/tokenizer/symbols.hpp"
#include "lib/tokenizer/unicode.hpp"

namespace slm::tokenizer {

namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581

// Whether the bytes of a '▁' start at `pos` of `text` without another '▁' right before them.
bool starts_a_space_run(std::string_view text, size_t pos) {
  return text.compare(pos, kSpmSpace.size(), kSpmSpace) == 0 &&
         (pos < kSpmSpace.size() || text.compare(pos - kSpmSpace.size(), kSpmSpace.size(), kSpmSpace) != 0);
}

bool has_space_run_inside(std::string_view token) {
  for (size_t pos = token.find(kSpmSpace, 1); pos != std::string_view::npos; pos = token.find(kSpmSpace, pos + 1)) {
    if (starts_a_space_run(token, pos)) return true;
  }
  return false;
}

}  // namespace

SpmModel SpmModel::build(const Vocabulary& vocabulary, TokenId unknown_id) {
  SpmModel model;
  model.words_merge_independently =
      std::none_of(vocabulary.texts.begin(), vocabulary.texts.end(), has_space_run_inside);
  for (int byte = 0; byte < 256; ++byte) {
    TokenId id = find_byte_token(vocabulary, static_cast<uint8_t>(byte));
    if (id < 0) id = vocabulary.find(std::string_view(reinterpret_cast<const char*>(&byte), 1));
    if (id < 0) id = unknown_id;
    model.byte_tokens[static_cast<size_t>(byte)] = id;
  }
  return model;
}

namespace {

struct Bigram {
  int32_t left = 0;
  int32_t right = 0;
  float score = 0;
  size_t length = 0;  // the merged length when queued; a mismatch later means the pair is stale
};

// Highest score first; among equal scores the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

void SpmModel::tokenize(const Vocabulary& vocabulary, std::string_view text, std::vector<TokenId>& out) const {
  if (!words_merge_independently) {
    merge_and_emit(vocabulary, text, out);
    return;
  }
  // Cut where a run of '▁' starts, at character boundaries as the whole text splits into them.
  size_t word_begin = 0;
  for (size_t offset = 0; offset < text.size();) {
    if (offset > word_begin && starts_a_space_run(text, offset)) {
      merge_and_emit(vocabulary, text.substr(word_begin, offset - word_begin), out);
      word_begin = offset;
    }
    offset += std::min(utf8_sequence_length(static_cast<uint8_t>(text[offset])), text.size() - offset);
  }
  merge_and_emit(vocabulary, text.substr(word_begin), out);
}

void SpmModel::merge_and_emit(const Vocabulary& vocabulary, std::string_view text, std::vector<TokenId>& out) const {
  if (text.empty()) return;
  std::vector<Symbol> symbols = split_into_symbols(text);

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const auto try_add_bigram = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const size_t length = symbols[left].length + symbols[right].length;
    const TokenId id = vocabulary.find(text.substr(symbols[left].begin, length));
    if (id < 0) return;
    queue.push(Bigram{left, right, vocabulary.scores[static_cast<size_t>(id)], length});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add_bigram(i - 1, i);

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.length) continue;
    merge_into_left(symbols, bigram.left, bigram.right);
    try_add_bigram(left.previous, bigram.left);
    try_add_bigram(bigram.left, left.next);
  }

  // Every merged symbol is a token (a pair is only queued when it is one), so only single
  // characters can be missing from the vocabulary; they become byte tokens.
  append_symbol_tokens(symbols, text, vocabulary, byte_tokens, out);
}

}  // namespace slm::tokenizer
