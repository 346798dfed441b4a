#include "lib/chat/chat_think.hpp"

#include <algorithm>

namespace slm::chat {

namespace {

constexpr std::string_view open_tag = "<think>";
constexpr std::string_view close_tag = "</think>";

void append_segment(std::vector<TextSegment>& segments, std::string_view text, bool thinking) {
  if (text.empty()) return;
  if (!segments.empty() && segments.back().thinking == thinking) segments.back().text += text;
  else segments.push_back({std::string(text), thinking});
}

// Length of the longest suffix of `text` that is a proper prefix of `tag`.
size_t partial_tag_length(std::string_view text, std::string_view tag) {
  for (size_t length = std::min(text.size(), tag.size() - 1); length > 0; --length)
    if (text.substr(text.size() - length) == tag.substr(0, length)) return length;
  return 0;
}

}  // namespace

bool ends_inside_thinking(std::string_view text) {
  const size_t open = text.rfind(open_tag);
  if (open == std::string_view::npos) return false;
  const size_t close = text.rfind(close_tag);
  return close == std::string_view::npos || close < open;
}

std::vector<TextSegment> ThinkFilter::push(std::string_view text) {
  pending_ += text;
  std::vector<TextSegment> segments;
  std::string_view rest = pending_;
  while (true) {
    const std::string_view tag = thinking_ ? close_tag : open_tag;
    const size_t found = rest.find(tag);
    if (found == std::string_view::npos) {
      const size_t held = partial_tag_length(rest, tag);
      append_segment(segments, rest.substr(0, rest.size() - held), thinking_);
      pending_ = std::string(rest.substr(rest.size() - held));
      return segments;
    }
    append_segment(segments, rest.substr(0, found), thinking_);
    append_segment(segments, tag, true);
    thinking_ = !thinking_;
    rest.remove_prefix(found + tag.size());
  }
}

std::vector<TextSegment> ThinkFilter::flush() {
  std::vector<TextSegment> segments;
  append_segment(segments, pending_, thinking_);
  pending_.clear();
  return segments;
}

}  // namespace slm::chat
