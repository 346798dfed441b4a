#include "lib/tokenizer/pre_tokenizer.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <string>

#include "lib/tokenizer/unicode.hpp"
#include "slm/error.hpp"

namespace slm::tokenizer {

// ---------------------------------------------------------------------------------------------
// Regex splitting with PCRE2 (UTF + UCP, so \p{L} and friends cover all of Unicode).
// ---------------------------------------------------------------------------------------------
namespace {

// Unicode White_Space: what llama.cpp's splitter (and Python's / Rust's regex \s) treat as
// whitespace. PCRE2's UCP \s is Z plus \t\n\v\f\r and so misses U+0085.
constexpr std::string_view kWhitespaceClassMembers =
    R"re(\t\n\x{0B}\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})re";

}  // namespace

std::string translate_whitespace_escapes(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 64);
  bool inside_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char escaped = pattern[i + 1];
      ++i;
      if (escaped == 's') {
        if (inside_class) {
          out += kWhitespaceClassMembers;
        } else {
          out += '[';
          out += kWhitespaceClassMembers;
          out += ']';
        }
      } else if (escaped == 'S') {
        if (inside_class) throw Error("pre-tokenizer regex: \\S inside a character class is not supported");
        out += "[^";
        out += kWhitespaceClassMembers;
        out += ']';
      } else {
        out += c;
        out += escaped;
      }
      continue;
    }
    if (c == '[' && !inside_class) {
      inside_class = true;
    } else if (c == ']' && inside_class) {
      inside_class = false;
    }
    out += c;
  }
  return out;
}

struct PreTokenizer::CompiledRegex {
  pcre2_code* code = nullptr;
  bool jit = false;

  explicit CompiledRegex(std::string_view pattern) {
    const std::string translated = translate_whitespace_escapes(pattern);
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    // DOLLAR_ENDONLY: '$' means the end of the piece, as in std::regex (llama.cpp), not also
    // "before a final newline".
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                         PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C, &error_code,
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

  // Appends the pieces of `piece`: each match, and each stretch of text between matches.
  void split_piece(std::string_view piece, pcre2_match_data* match_data, std::vector<std::string_view>& out) const {
    const auto subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data);
    size_t previous_end = 0;
    size_t search_from = 0;
    while (search_from < piece.size()) {
      int rc = pcre2_match(code, subject, piece.size(), search_from, PCRE2_NO_UTF_CHECK, match_data, nullptr);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        // A very long match outgrew the JIT stack; the interpreter keeps its frames on the heap.
        rc = pcre2_match(code, subject, piece.size(), search_from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, match_data,
                         nullptr);
      }
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        std::array<PCRE2_UCHAR, 256> message{};
        pcre2_get_error_message(rc, message.data(), message.size());
        throw Error(std::string("pre-tokenizer regex failed: ") + reinterpret_cast<const char*>(message.data()));
      }
      const size_t match_begin = ovector[0];
      const size_t match_end = ovector[1];
      if (match_begin > previous_end) out.push_back(piece.substr(previous_end, match_begin - previous_end));
      if (match_end > match_begin) {
        out.push_back(piece.substr(match_begin, match_end - match_begin));
        previous_end = match_end;
        search_from = match_end;
      } else {
        // An empty match adds nothing; step over one character and search on.
        previous_end = match_begin;
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
