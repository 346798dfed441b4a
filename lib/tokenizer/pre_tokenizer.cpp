#include "lib/tokenizer/pre_tokenizer.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <string>

#include "lib/tokenizer/llama_regex.hpp"
#include "lib/tokenizer/unicode.hpp"
#include "slm/error.hpp"

namespace slm::tokenizer {

// Regex splitting with PCRE2, UTF mode. The patterns are llama.cpp's, translated to mean in
// PCRE2 what they mean there (see llama_regex.hpp); without PCRE2_UCP, \d \w \b stay ASCII as
// in llama.cpp's std::regex.
struct PreTokenizer::CompiledRegex {
  pcre2_code* code = nullptr;
  bool jit = false;

  explicit CompiledRegex(std::string_view pattern) {
    const std::string translated = translate_llama_regex(pattern);
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    // DOLLAR_ENDONLY: '$' means the end of the piece, as in std::regex (llama.cpp), not also
    // "before a final newline".
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                         PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C, &error_code,
                         &error_offset, nullptr);
    if (code == nullptr) {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(error_code, message.data(), message.size());
      throw Error("pre-tokenizer regex does not compile at offset " + std::to_string(error_offset) + ": " +
                  reinterpret_cast<const char*>(message.data()) + " (pattern " + std::string(pattern) + ")");
    }
    jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  }
  ~CompiledRegex() { pcre2_code_free(code); }
  CompiledRegex(const CompiledRegex&) = delete;
  CompiledRegex& operator=(const CompiledRegex&) = delete;

  // Runs the regex on `piece` from `start`; false when it does not match there or later.
  bool match(std::string_view piece, size_t start, uint32_t options, pcre2_match_data* match_data) const {
    const auto subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
    options |= PCRE2_NO_UTF_CHECK;
    int rc = pcre2_match(code, subject, piece.size(), start, options, match_data, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      // A very long match outgrew the JIT stack; the interpreter keeps its frames on the heap.
      rc = pcre2_match(code, subject, piece.size(), start, options | PCRE2_NO_JIT, match_data, nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(rc, message.data(), message.size());
      throw Error(std::string("pre-tokenizer regex failed: ") + reinterpret_cast<const char*>(message.data()));
    }
    return true;
  }

  // Appends the pieces of `piece`: each match, and each stretch of text between matches. An
  // empty match (a lookahead-only regex such as superbpe's) splits the text where it matches.
  void split_piece(std::string_view piece, pcre2_match_data* match_data, std::vector<std::string_view>& out) const {
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data);
    size_t previous_end = 0;
    size_t search_from = 0;
    while (search_from < piece.size() && match(piece, search_from, 0, match_data)) {
      size_t match_begin = ovector[0];
      size_t match_end = ovector[1];
      // Like std::regex_iterator, after an empty match look for a non-empty one at the same place.
      if (match_end == match_begin && match(piece, match_begin, PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED, match_data)) {
        match_end = ovector[1];
      }
      if (match_begin > previous_end) out.push_back(piece.substr(previous_end, match_begin - previous_end));
      previous_end = match_begin;
      if (match_end > match_begin) {
        out.push_back(piece.substr(match_begin, match_end - match_begin));
        previous_end = search_from = match_end;
      } else {
        search_from = match_begin + utf8_sequence_length(static_cast<uint8_t>(piece[match_begin]));
      }
    }
    if (previous_end < piece.size()) out.push_back(piece.substr(previous_end));
  }
};

PreTokenizer::PreTokenizer(std::span<const std::string_view> patterns) {
  for (const auto pattern : patterns) regexes_.push_back(std::make_unique<CompiledRegex>(pattern));
}
PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> pieces;
  if (text.empty()) return pieces;
  pieces.push_back(text);
  std::vector<std::string_view> next_pieces;
  for (const auto& regex : regexes_) {
    using MatchDataPtr = std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)>;
    const MatchDataPtr match_data(pcre2_match_data_create_from_pattern(regex->code, nullptr), &pcre2_match_data_free);
    if (!match_data) throw Error("pre-tokenizer: out of memory for regex match data");
    next_pieces.clear();
    next_pieces.reserve(pieces.size() * 2);
    for (const auto piece : pieces) regex->split_piece(piece, match_data.get(), next_pieces);
    pieces.swap(next_pieces);
  }
  return pieces;
}

}  // namespace slm::tokenizer
