// UTF-8 and GPT-2 byte-level helpers shared by the tokenizers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace slm::tokenizer {

inline constexpr uint32_t kReplacementCharacter = 0xFFFD;

// Bytes in the UTF-8 sequence a lead byte announces, judged from its high nibble the way
// llama.cpp splits text into symbols: 0x00-0xBF -> 1 (continuation bytes stand alone),
// 0xC0-0xDF -> 2, 0xE0-0xEF -> 3, 0xF0-0xFF -> 4.
size_t utf8_sequence_length(uint8_t lead_byte);

void append_utf8(std::string& out, uint32_t codepoint);

// Decodes one strictly valid UTF-8 character at `pos` (no overlongs, surrogates or values
// above U+10FFFF). Returns nullopt, leaving pos alone, when the bytes there are not one.
std::optional<uint32_t> decode_utf8_strict(std::string_view text, size_t& pos);

// Re-encodes text as valid UTF-8 the way llama.cpp's unicode_cpts_from_utf8 reads it before
// the BPE pre-tokenizer: a lead byte with the right number of continuation bytes decodes
// (even when overlong, so "\xC0\x80" becomes "\0"), every other byte becomes U+FFFD. Surrogates
// and values above U+10FFFF also become U+FFFD (llama.cpp would throw or pass them to the
// regex engine unchecked). The result is always valid UTF-8, as PCRE2's UTF mode requires.
std::string sanitize_utf8(std::string_view text);

// GPT-2's bytes_to_unicode: every byte maps to one printable character, so byte-level BPE
// vocabularies store ' ' as 'Ġ' (U+0120) and '\n' as 'Ċ' (U+010A).
const std::string& byte_to_unicode(uint8_t byte);
// The inverse, for a codepoint; nullopt for a codepoint no byte maps to.
std::optional<uint8_t> unicode_to_byte(uint32_t codepoint);

// Appends the byte-level form of raw bytes: each byte's byte_to_unicode().
void append_byte_level(std::string& out, std::string_view bytes);

}  // namespace slm::tokenizer
