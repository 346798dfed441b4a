// The confidence summary (slm/confidence.hpp) as JSON, the one shape slm-server's responses and
// slm-chat --json's reply event share.
#pragma once

#include <nlohmann/json.hpp>

#include "slm/confidence.hpp"

namespace slm {

inline nlohmann::ordered_json confidence_json(const Confidence& c) {
  return {{"mean_logprob", c.mean_logprob},         {"min_logprob", c.min_logprob},
          {"mean_entropy", c.mean_entropy},         {"low_margin_share", c.low_margin_share},
          {"low_margin_threshold", c.low_margin_threshold}, {"n_tokens", c.n_tokens}};
}

}  // namespace slm
