// Finding special-token text inside raw text before tokenization, as llama.cpp's
// tokenizer_st_partition: the text is cut into raw fragments and special tokens.
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "slm/tokenizer.hpp"

namespace slm::tokenizer {

struct SpecialToken {
  TokenId id = -1;
  std::string_view text;        // non-empty; points into the vocabulary
  bool always_matched = false;  // USER_DEFINED: recognised even without parse_special
  bool strip_left = false;      // drop whitespace before the token (e.g. <mask> in Jina v2)
  bool strip_right = false;     // drop whitespace after it (Phi-3's special tokens)
};

struct TextFragment {
  TokenId token = -1;  // >= 0: this fragment is that special token
  std::string_view text;  // the raw text when token < 0
};

// Tokens are tried longest first, as given; each one splits every raw fragment at all of its
// occurrences, leftmost first. Without parse_special only always_matched tokens are tried.
std::vector<TextFragment> split_on_special_tokens(std::string_view text, std::span<const SpecialToken> tokens,
                                                  bool parse_special);

}  // namespace slm::tokenizer
