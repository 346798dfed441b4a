// Finding a reasoning model's <think>...</think> section in streamed text, so that it can be
// shown dimmed or hidden. A tag may arrive split across pieces ("<thi" + "nk>"), and the
// prompt itself may end inside the section (DeepSeek-R1's generation prompt ends with
// "<think>\n"), so the filter holds back a possible partial tag and starts in either state.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace slm::chat {

struct TextSegment {
  std::string text;
  bool thinking = false;  // inside the section; the <think> and </think> tags count as inside
  bool operator==(const TextSegment&) const = default;
};

// True when the text opens a <think> section that it does not close.
bool ends_inside_thinking(std::string_view text);

class ThinkFilter {
 public:
  explicit ThinkFilter(bool starts_inside_thinking = false) : thinking_(starts_inside_thinking) {}

  // Appends streamed text; returns the segments that are certain now (adjacent segments differ
  // in `thinking`, none is empty).
  std::vector<TextSegment> push(std::string_view text);
  // Whatever is still held back (an unfinished tag is plain text after all).
  std::vector<TextSegment> flush();

 private:
  bool thinking_;
  std::string pending_;
};

}  // namespace slm::chat
