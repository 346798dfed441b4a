#include "common/chat_output.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "lib/confidence_json.hpp"

namespace slm::tools {

namespace {

using Json = nlohmann::ordered_json;

void write_json_line(const Json& event) {
  const std::string line = event.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

void write_stdout(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

double per_second(double count, double seconds) { return seconds > 0 ? count / seconds : 0.0; }

// The first generated token comes with the prompt, so generation speed counts the ones after it.
double generation_rate(const GenerateResult& result) {
  return result.tokens.size() > 1 ? per_second(double(result.tokens.size() - 1), result.generation_seconds) : 0.0;
}

}  // namespace

void ChatOutput::begin_reply(bool prompt_ends_inside_thinking) {
  think_filter_ = ThinkFilter(prompt_ends_inside_thinking);
  skip_leading_space_ = false;
}

void ChatOutput::reply_text(std::string_view piece) {
  for (const TextSegment& segment : think_filter_.push(piece)) write_segment(segment);
}

void ChatOutput::write_segment(const TextSegment& segment) {
  if (segment.thinking && settings_.hide_thinking) {
    skip_leading_space_ = true;
    return;
  }
  std::string_view text = segment.text;
  if (skip_leading_space_ && !segment.thinking) {
    const size_t first = text.find_first_not_of(" \t\r\n");
    text.remove_prefix(first == std::string_view::npos ? text.size() : first);
    if (text.empty()) return;
    skip_leading_space_ = false;
  }
  if (settings_.json) {
    Json event = {{"event", "token"}, {"text", std::string(text)}};
    if (segment.thinking) event["thinking"] = true;
    write_json_line(event);
    return;
  }
  set_faint(segment.thinking && settings_.dim_thinking);
  write_stdout(text);
}

void ChatOutput::set_faint(bool faint) {
  if (faint == faint_) return;
  write_stdout(faint ? "\x1b[2m" : "\x1b[22m");
  faint_ = faint;
}

void ChatOutput::end_reply(const GenerateResult& result) {
  for (const TextSegment& segment : think_filter_.flush()) write_segment(segment);
  const double ttft_ms = result.time_to_first_token * 1000.0;
  const double prompt_rate = per_second(result.n_prompt_evaluated, result.prompt_seconds);
  if (settings_.json) {
    write_json_line({{"event", "reply"},
                     {"text", result.text},
                     {"stop_reason", std::string(stop_reason_name(result.stop_reason))},
                     {"n_prompt_tokens", result.n_prompt_tokens},
                     {"n_prompt_evaluated", result.n_prompt_evaluated},
                     {"n_generated", result.tokens.size()},
                     {"ttft_ms", ttft_ms},
                     {"prompt_tokens_per_second", prompt_rate},
                     {"generation_tokens_per_second", generation_rate(result)},
                     {"confidence", confidence_json(result.confidence)}});
    if (settings_.speculative)
      write_json_line({{"event", "speculation"},
                       {"drafted", result.speculation.drafted},
                       {"accepted", result.speculation.accepted},
                       {"acceptance_rate", result.speculation.acceptance_rate()}});
    return;
  }
  set_faint(false);
  write_stdout("\n");
  if (result.stop_reason == StopReason::Cancelled) std::fputs("[stopped]\n", stderr);
  if (result.stop_reason == StopReason::ContextFull)
    std::fputs("[context full: the reply was cut short]\n", stderr);
  if (settings_.verbose)
    std::fprintf(stderr,
                 "[prompt: %d tokens, %d evaluated (%d from cache), %.1f tok/s | generation: %zu tokens, %.1f tok/s | "
                 "time to first token: %.0f ms | stop: %s]\n",
                 result.n_prompt_tokens, result.n_prompt_evaluated, result.n_prompt_tokens - result.n_prompt_evaluated,
                 prompt_rate, result.tokens.size(), generation_rate(result), ttft_ms,
                 std::string(stop_reason_name(result.stop_reason)).c_str());
  if (settings_.verbose && settings_.speculative)
    std::fprintf(stderr, "[speculation: %lld drafted, %lld accepted, acceptance rate %.1f%%, %lld verifications]\n",
                 static_cast<long long>(result.speculation.drafted), static_cast<long long>(result.speculation.accepted),
                 100.0 * result.speculation.acceptance_rate(), static_cast<long long>(result.speculation.verifications));
}

void ChatOutput::context_trimmed(int dropped_messages, int n_prompt_tokens) {
  if (settings_.json) {
    write_json_line({{"event", "context_trimmed"}, {"dropped_messages", dropped_messages}, {"n_prompt_tokens", n_prompt_tokens}});
    return;
  }
  std::fprintf(stderr, "[context full: dropped the %d oldest message%s]\n", dropped_messages,
               dropped_messages == 1 ? "" : "s");
}

void ChatOutput::error(const std::string& message) {
  if (settings_.json) {
    write_json_line({{"event", "error"}, {"message", message}});
    return;
  }
  std::fprintf(stderr, "slm-chat: error: %s\n", message.c_str());
}

void ChatOutput::notice(const std::string& message) {
  if (settings_.json) {
    write_json_line({{"event", "info"}, {"message", message}});
    return;
  }
  std::fprintf(stderr, "%s\n", message.c_str());
}

}  // namespace slm::tools
