// Holding back streamed text that might be the start of a stop string, and finding complete
// ones: shared by generate() and the server's scheduler.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace slm {

struct StopStringFilter {
  std::vector<std::string> stop_strings;
  std::string pending;

  // Appends text; returns what can be emitted now. Sets `stopped` when a stop string completes
  // (the returned text then ends right before it, and the rest is dropped).
  std::string push(std::string_view text, bool& stopped);
};

}  // namespace slm
