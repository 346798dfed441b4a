#include "lib/tokenizer/bpe.hpp"

#include <queue>

#include "lib/tokenizer/symbols.hpp"
#include "lib/tokenizer/unicode.hpp"
#include "slm/error.hpp"

namespace slm::tokenizer {

namespace {

uint64_t merge_hash(std::string_view left, std::string_view right) {
  const uint64_t h = text_hash(left);
  return h ^ (text_hash(right) + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2));
}

}  // namespace

bool BpeModel::is_merge(int32_t rank, std::string_view left, std::string_view right) const {
  const auto r = static_cast<size_t>(rank);
  const std::string_view text = merge_text;
  return text.substr(merge_bounds[2 * r], merge_bounds[2 * r + 1] - merge_bounds[2 * r]) == left &&
         text.substr(merge_bounds[2 * r + 1] + 1, merge_bounds[2 * r + 2] - merge_bounds[2 * r + 1] - 1) == right;
}

int32_t BpeModel::rank_of(std::string_view left, std::string_view right) const {
  return merge_ranks.find(merge_hash(left, right), [&](int32_t rank) { return is_merge(rank, left, right); });
}

BpeModel BpeModel::build(const std::vector<std::string>& merges, const Vocabulary& vocabulary, BpeOptions options,
                         std::string_view source) {
  BpeModel model;
  model.options = options;
  for (int byte = 0; byte < 256; ++byte) {
    const char one_byte = static_cast<char>(byte);
    model.byte_fallback[static_cast<size_t>(byte)] = options.byte_level
                                                         ? vocabulary.find(std::string_view(&one_byte, 1))
                                                         : find_byte_token(vocabulary, static_cast<uint8_t>(byte));
  }
  size_t text_bytes = 0;
  for (const std::string& line : merges) text_bytes += line.size();
  if (text_bytes > UINT32_MAX) throw Error(std::string(source) + ": tokenizer.ggml.merges holds over 4 GiB of text");
  model.merge_text.reserve(text_bytes);
  model.merge_bounds.reserve(2 * merges.size() + 1);
  model.merge_bounds.push_back(0);
  model.merge_ranks = IdHashTable(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& line = merges[rank];
    const size_t space = line.find(' ', 1);
    if (space == std::string::npos) {
      throw Error(std::string(source) + ": tokenizer.ggml.merges[" + std::to_string(rank) +
                  "] has no space between its two parts: '" + line + "'");
    }
    const auto begin = static_cast<uint32_t>(model.merge_text.size());
    model.merge_text += line;
    model.merge_bounds.push_back(begin + static_cast<uint32_t>(space));
    model.merge_bounds.push_back(begin + static_cast<uint32_t>(line.size()));
    const std::string_view left = std::string_view(line).substr(0, space), right = std::string_view(line).substr(space + 1);
    model.merge_ranks.insert(merge_hash(left, right), static_cast<int32_t>(rank),
                             [&](int32_t earlier) { return model.is_merge(earlier, left, right); });
  }
  return model;
}

namespace {

struct Bigram {
  int32_t left = 0;
  int32_t right = 0;
  int32_t rank = 0;
  size_t left_length = 0;   // the lengths when queued: symbols only grow, so a changed
  size_t right_length = 0;  // length means the pair is stale
};

// Lowest rank first; among equal ranks the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

void BpeModel::encode_word(const Vocabulary& vocabulary, std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (options.ignore_merges || (options.newline_runs_whole && word.find_first_not_of('\n') == std::string_view::npos)) {
    const TokenId whole = vocabulary.find(word);
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }

  std::vector<Symbol> symbols = split_into_symbols(word);

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const auto try_add_bigram = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& a = symbols[left];
    const Symbol& b = symbols[right];
    const int32_t rank = rank_of(word.substr(a.begin, a.length), word.substr(b.begin, b.length));
    if (rank < 0) return;
    queue.push(Bigram{left, right, rank, a.length, b.length});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add_bigram(i - 1, i);

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    if (left.length != bigram.left_length || right.length != bigram.right_length || left.next != bigram.right) {
      continue;
    }
    merge_into_left(symbols, bigram.left, bigram.right);
    try_add_bigram(left.previous, bigram.left);
    try_add_bigram(bigram.left, left.next);
  }

  append_symbol_tokens(symbols, word, vocabulary, byte_fallback, out);
}

}  // namespace slm::tokenizer
