#include "lib/grammar/utf8_ranges.hpp"

#include <algorithm>

namespace slm::grammar {

namespace {

constexpr uint32_t max_codepoint = 0x10FFFF;

int encoded_length(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

void split_range(uint32_t lo, uint32_t hi, std::vector<Utf8Sequence>& out) {
  // Ranges never cross an encoded-length boundary...
  for (uint32_t boundary : {0x7Fu, 0x7FFu, 0xFFFFu}) {
    if (lo <= boundary && hi > boundary) {
      split_range(lo, boundary, out);
      split_range(boundary + 1, hi, out);
      return;
    }
  }
  const int length = encoded_length(lo);
  // ...and, for each continuation byte, either span its whole 6-bit range or share the bytes before it.
  for (int i = 1; i < length; ++i) {
    const uint32_t mask = (uint32_t(1) << (6 * i)) - 1;
    if ((lo & ~mask) != (hi & ~mask)) {
      if ((lo & mask) != 0) {
        split_range(lo, lo | mask, out);
        split_range((lo | mask) + 1, hi, out);
        return;
      }
      if ((hi & mask) != mask) {
        split_range(lo, (hi & ~mask) - 1, out);
        split_range(hi & ~mask, hi, out);
        return;
      }
    }
  }
  std::vector<uint8_t> a, b;
  append_utf8(a, lo);
  append_utf8(b, hi);
  Utf8Sequence sequence;
  sequence.length = length;
  for (int i = 0; i < length; ++i) sequence.bytes[size_t(i)] = {a[size_t(i)], b[size_t(i)]};
  out.push_back(sequence);
}

}  // namespace

void append_utf8(std::vector<uint8_t>& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(uint8_t(cp));
  } else if (cp < 0x800) {
    out.push_back(uint8_t(0xC0 | cp >> 6));
    out.push_back(uint8_t(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(uint8_t(0xE0 | cp >> 12));
    out.push_back(uint8_t(0x80 | (cp >> 6 & 0x3F)));
    out.push_back(uint8_t(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(uint8_t(0xF0 | cp >> 18));
    out.push_back(uint8_t(0x80 | (cp >> 12 & 0x3F)));
    out.push_back(uint8_t(0x80 | (cp >> 6 & 0x3F)));
    out.push_back(uint8_t(0x80 | (cp & 0x3F)));
  }
}

std::vector<CodepointRange> normalize_ranges(std::vector<CodepointRange> ranges) {
  std::vector<CodepointRange> clipped;
  for (CodepointRange r : ranges) {
    if (r.lo > r.hi || r.lo > max_codepoint) continue;
    r.hi = std::min(r.hi, max_codepoint);
    // Surrogates have no UTF-8 encoding.
    if (r.lo < 0xD800 && r.hi >= 0xD800) {
      clipped.push_back({r.lo, 0xD7FF});
      if (r.hi > 0xDFFF) clipped.push_back({0xE000, r.hi});
    } else if (r.lo >= 0xD800 && r.lo <= 0xDFFF) {
      if (r.hi > 0xDFFF) clipped.push_back({0xE000, r.hi});
    } else {
      clipped.push_back(r);
    }
  }
  std::sort(clipped.begin(), clipped.end(), [](auto a, auto b) { return a.lo < b.lo; });
  std::vector<CodepointRange> merged;
  for (CodepointRange r : clipped) {
    if (!merged.empty() && r.lo <= merged.back().hi + 1) merged.back().hi = std::max(merged.back().hi, r.hi);
    else merged.push_back(r);
  }
  return merged;
}

std::vector<CodepointRange> complement_ranges(const std::vector<CodepointRange>& normalized) {
  std::vector<CodepointRange> out;
  uint32_t next = 0;
  for (CodepointRange r : normalized) {
    if (r.lo > next) out.push_back({next, r.lo - 1});
    next = r.hi + 1;
  }
  if (next <= max_codepoint) out.push_back({next, max_codepoint});
  return normalize_ranges(out);
}

std::vector<Utf8Sequence> utf8_sequences(const std::vector<CodepointRange>& normalized) {
  std::vector<Utf8Sequence> out;
  for (CodepointRange r : normalized) split_range(r.lo, r.hi, out);
  return out;
}

int text_step(int state, uint8_t byte) {
  // Inside a character: the next byte's range, and the state after it (Unicode's table 3-7).
  struct Continuation {
    uint8_t lo, hi;
    int next;
  };
  static constexpr Continuation inside[text_states] = {
      {0, 0, 0},          // 0: between characters (unused)
      {0x80, 0xBF, 0},    // 1: the last byte
      {0x80, 0xBF, 1},    // 2: two more
      {0xA0, 0xBF, 1},    // 3: after E0
      {0x80, 0x9F, 1},    // 4: after ED (no surrogates)
      {0x80, 0xBF, 2},    // 5: three more
      {0x90, 0xBF, 2},    // 6: after F0
      {0x80, 0x8F, 2},    // 7: after F4
  };
  if (state != text_between_characters) {
    const Continuation& c = inside[state];
    return byte >= c.lo && byte <= c.hi ? c.next : text_dead;
  }
  if (byte < 0x80) return byte >= 0x20 && byte != '"' && byte != '\\' ? text_between_characters : text_dead;
  if (byte >= 0xC2 && byte <= 0xDF) return 1;
  if (byte == 0xE0) return 3;
  if (byte == 0xED) return 4;
  if (byte >= 0xE1 && byte <= 0xEF) return 2;
  if (byte == 0xF0) return 6;
  if (byte >= 0xF1 && byte <= 0xF3) return 5;
  if (byte == 0xF4) return 7;
  return text_dead;
}

}  // namespace slm::grammar
