// llama.cpp's pre-tokenizer regexes, rewritten for PCRE2 so that they mean there what they
// mean in llama.cpp.
#pragma once

#include <string>
#include <string_view>

namespace slm::tokenizer {

// llama.cpp does not run its regexes on the text as it is (src/unicode.cpp,
// unicode_regex_split). A regex with a \p{..} runs as std::regex over a copy of the text in
// which every non-ASCII character is one byte standing for its general category, each \p{..}
// becoming a class of that byte and the category's ASCII members. A regex without one runs as
// std::wregex over the codepoints, with non-ASCII whitespace replaced by U+000B. PCRE2 sees
// the real text, so the rewrite gives each construct llama.cpp's meaning:
//   \s       Unicode White_Space, U+0085 included (PCRE2's own \s lacks it); \S its complement.
//   \p{Lu} \p{Ll} \p{Lt} \p{Lm} \p{Lo}   any letter: only general categories survive the
//            collapse, so llama.cpp's [\p{Lu}] matches 'a' and 'e' with an accent alike.
//   \p{S}    without '~': llama.cpp's ASCII members of \p{S} are $+<=>^`| only.
//   a non-ASCII whitespace character listed in a class (DeepSeek's U+3000) is dropped from the
//            class: llama.cpp's text holds U+000B in its place, which only \s matches.
// \d, \w and \b are ASCII in std::regex's "C" locale; a regex compiled without PCRE2_UCP gives
// them that meaning, so they pass through unchanged.
//
// Throws slm::Error for what the dialect lacks: \S inside a class, \P{..}, a category other
// than L N P S M and the letter subcategories, '~' next to \p{S} in one class, and a
// non-ASCII whitespace character outside a class.
std::string translate_llama_regex(std::string_view pattern);

}  // namespace slm::tokenizer
