// What slm-chat shows: streamed replies (a <think> section dimmed or hidden), notes and errors
// for people on stderr, or with --json one JSON object per line on stdout for scripts:
//
//   {"event":"token","text":"..."}                        a streamed piece; "thinking":true inside <think>
//   {"event":"reply","text":"...","stop_reason":"...","n_prompt_tokens":N,"n_prompt_evaluated":N,
//    "n_generated":N,"ttft_ms":X,"prompt_tokens_per_second":X,"generation_tokens_per_second":X,
//    "confidence":{"mean_logprob":X,"min_logprob":X,"mean_entropy":X,"low_margin_share":X,
//                  "low_margin_threshold":0.1,"n_tokens":N}}   (slm/confidence.hpp)
//   {"event":"context_trimmed","dropped_messages":N,"n_prompt_tokens":N}
//   {"event":"info","message":"..."}                      command output, notes
//   {"event":"error","message":"..."}
//
// Text that is not valid UTF-8 (a random model's bytes, binary input) is written with U+FFFD
// in its place, so every line stays valid JSON.
#pragma once

#include <string>
#include <string_view>

#include "lib/chat/chat_think.hpp"
#include "slm/generate.hpp"

namespace slm::tools {

using namespace slm::chat;  // the chat rooms of the library (lib/chat/)

struct OutputSettings {
  bool json = false;
  bool dim_thinking = false;  // ANSI faint for <think> sections (stdout is a terminal)
  bool hide_thinking = false;
  bool verbose = false;       // timings after every reply (text mode; --json always has them)
  bool speculative = false;   // replies are drafted (--model-draft, --lookup-ngram): report acceptance too
};

class ChatOutput {
 public:
  explicit ChatOutput(OutputSettings settings) : settings_(settings) {}

  const OutputSettings& settings() const { return settings_; }

  void begin_reply(bool prompt_ends_inside_thinking);
  void reply_text(std::string_view piece);
  void end_reply(const GenerateResult& result);

  void context_trimmed(int dropped_messages, int n_prompt_tokens);
  void error(const std::string& message);   // one line
  void notice(const std::string& message);  // for people; an "info" event in --json

 private:
  void write_segment(const TextSegment& segment);
  void set_faint(bool faint);

  OutputSettings settings_;
  ThinkFilter think_filter_;
  bool faint_ = false;
  bool skip_leading_space_ = false;  // right after a hidden <think> section
};

}  // namespace slm::tools
