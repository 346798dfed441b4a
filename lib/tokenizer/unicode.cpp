#include "lib/tokenizer/unicode.hpp"

#include <array>

namespace slm::tokenizer {

size_t utf8_sequence_length(uint8_t lead_byte) {
  static constexpr std::array<uint8_t, 16> length_by_high_nibble = {1, 1, 1, 1, 1, 1, 1, 1,
                                                                    1, 1, 1, 1, 2, 2, 3, 4};
  return length_by_high_nibble[lead_byte >> 4];
}

void append_utf8(std::string& out, uint32_t codepoint) {
  if (codepoint <= 0x7F) {
    out.push_back(static_cast<char>(codepoint));
  } else if (codepoint <= 0x7FF) {
    out.push_back(static_cast<char>(0xC0 | (codepoint >> 6)));
    out.push_back(static_cast<char>(0x80 | (codepoint & 0x3F)));
  } else if (codepoint <= 0xFFFF) {
    out.push_back(static_cast<char>(0xE0 | (codepoint >> 12)));
    out.push_back(static_cast<char>(0x80 | ((codepoint >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (codepoint & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | ((codepoint >> 18) & 0x07)));
    out.push_back(static_cast<char>(0x80 | ((codepoint >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((codepoint >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (codepoint & 0x3F)));
  }
}

namespace {

bool is_continuation(uint8_t byte) { return (byte & 0xC0) == 0x80; }

// llama.cpp's reading of one character: the lead byte's pattern fixes the length, and only
// the continuation bytes' top bits are checked.
std::optional<uint32_t> decode_utf8_lenient(std::string_view text, size_t& pos) {
  const auto byte_at = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte_at(pos);
  if (lead < 0x80) {
    pos += 1;
    return lead;
  }
  size_t length = 0;
  uint32_t codepoint = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    codepoint = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    codepoint = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    codepoint = lead & 0x07;
  } else {
    return std::nullopt;  // a continuation byte or 0xF8-0xFF
  }
  if (pos + length > text.size()) return std::nullopt;
  for (size_t i = 1; i < length; ++i) {
    if (!is_continuation(byte_at(pos + i))) return std::nullopt;
    codepoint = (codepoint << 6) | (byte_at(pos + i) & 0x3F);
  }
  pos += length;
  return codepoint;
}

bool is_scalar_value(uint32_t codepoint) {
  return codepoint <= 0x10FFFF && !(codepoint >= 0xD800 && codepoint <= 0xDFFF);
}

}  // namespace

std::optional<uint32_t> decode_utf8_strict(std::string_view text, size_t& pos) {
  size_t next = pos;
  const auto codepoint = decode_utf8_lenient(text, next);
  if (!codepoint || !is_scalar_value(*codepoint)) return std::nullopt;
  const size_t length = next - pos;
  const uint32_t shortest_length = *codepoint <= 0x7F ? 1 : *codepoint <= 0x7FF ? 2 : *codepoint <= 0xFFFF ? 3 : 4;
  if (length != shortest_length) return std::nullopt;
  pos = next;
  return codepoint;
}

std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const auto codepoint = decode_utf8_lenient(text, pos);
    if (codepoint && is_scalar_value(*codepoint)) {
      append_utf8(out, *codepoint);
    } else {
      if (!codepoint) ++pos;  // skip the one offending byte, as llama.cpp does
      append_utf8(out, kReplacementCharacter);
    }
  }
  return out;
}

namespace {

// bytes_to_unicode: printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves,
// the other 68 bytes to U+0100, U+0101, ... in byte order.
struct ByteLevelTables {
  std::array<std::string, 256> byte_to_text;
  std::array<int16_t, 324> codepoint_to_byte;  // every mapped codepoint is below 256 + 68

  ByteLevelTables() {
    codepoint_to_byte.fill(-1);
    uint32_t next_unprintable = 256;
    for (uint32_t byte = 0; byte < 256; ++byte) {
      const bool printable = (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) ||
                             (byte >= 0xAE && byte <= 0xFF);
      const uint32_t codepoint = printable ? byte : next_unprintable++;
      append_utf8(byte_to_text[byte], codepoint);
      codepoint_to_byte[codepoint] = static_cast<int16_t>(byte);
    }
  }
};

const ByteLevelTables& byte_level_tables() {
  static const ByteLevelTables tables;
  return tables;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t byte) { return byte_level_tables().byte_to_text[byte]; }

std::optional<uint8_t> unicode_to_byte(uint32_t codepoint) {
  const auto& table = byte_level_tables().codepoint_to_byte;
  if (codepoint >= table.size() || table[codepoint] < 0) return std::nullopt;
  return static_cast<uint8_t>(table[codepoint]);
}

void append_byte_level(std::string& out, std::string_view bytes) {
  const auto& tables = byte_level_tables();
  for (const char c : bytes) out += tables.byte_to_text[static_cast<uint8_t>(c)];
}

}  // namespace slm::tokenizer
