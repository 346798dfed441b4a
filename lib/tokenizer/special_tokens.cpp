#include "lib/tokenizer/special_tokens.hpp"

namespace slm::tokenizer {

namespace {

// C isspace in the "C" locale, which llama.cpp uses for lstrip / rstrip.
bool is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Cuts one raw fragment at every occurrence of `token`, appending the pieces to `out`.
void split_fragment(std::string_view raw, const SpecialToken& token, std::vector<TextFragment>& out) {
  while (!raw.empty()) {
    const size_t match = raw.find(token.text);
    if (match == std::string_view::npos) break;
    std::string_view left = raw.substr(0, match);
    if (token.strip_left) {
      while (!left.empty() && is_ascii_space(left.back())) left.remove_suffix(1);
    }
    if (!left.empty()) out.push_back(TextFragment{-1, left});
    out.push_back(TextFragment{token.id, {}});
    raw.remove_prefix(match + token.text.size());
    if (token.strip_right) {
      while (!raw.empty() && is_ascii_space(raw.front())) raw.remove_prefix(1);
    }
  }
  if (!raw.empty()) out.push_back(TextFragment{-1, raw});
}

}  // namespace

std::vector<TextFragment> split_on_special_tokens(std::string_view text, std::span<const SpecialToken> tokens,
                                                  bool parse_special) {
  std::vector<TextFragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back(TextFragment{-1, text});
  std::vector<TextFragment> next_fragments;
  for (const SpecialToken& token : tokens) {
    if (!parse_special && !token.always_matched) continue;
    if (text.find(token.text) == std::string_view::npos) continue;  // the common case, cheaply
    next_fragments.clear();
    for (const TextFragment& fragment : fragments) {
      if (fragment.token >= 0) {
        next_fragments.push_back(fragment);
      } else {
        split_fragment(fragment.text, token, next_fragments);
      }
    }
    fragments.swap(next_fragments);
  }
  return fragments;
}

}  // namespace slm::tokenizer
