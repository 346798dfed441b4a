#include "slm/tokenizer.hpp"

#include "lib/tokenizer/unicode.hpp"

namespace slm {

namespace {

bool is_continuation(uint8_t byte) { return (byte & 0xC0) == 0x80; }

// Length of a well-formed sequence starting with `lead`, or 0 when `lead` cannot start one.
size_t expected_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

}  // namespace

std::string Utf8StreamDecoder::push(std::string_view bytes) {
  pending_.append(bytes);
  // Everything up to `ready` is complete characters or bytes that can never become one.
  size_t ready = 0;
  while (ready < pending_.size()) {
    const size_t length = expected_length(static_cast<uint8_t>(pending_[ready]));
    if (length <= 1) {  // ASCII, or a byte no character starts with: pass it on as it is
      ++ready;
      continue;
    }
    size_t available = 1;
    while (available < length && ready + available < pending_.size() &&
           is_continuation(static_cast<uint8_t>(pending_[ready + available]))) {
      ++available;
    }
    if (available == length) {
      ready += length;
    } else if (ready + available == pending_.size()) {
      break;  // so far a valid beginning: wait for the rest
    } else {
      ready += available;  // broken by a non-continuation byte: pass the fragment on
    }
  }
  std::string complete = pending_.substr(0, ready);
  pending_.erase(0, ready);
  return complete;
}

std::string Utf8StreamDecoder::flush() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace slm
