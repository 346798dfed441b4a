#include "lib/stop_strings.hpp"

#include <algorithm>

namespace slm {

std::string StopStringFilter::push(std::string_view text, bool& stopped) {
  pending += text;
  size_t first_stop = std::string::npos;
  for (const std::string& stop : stop_strings)
    if (!stop.empty()) first_stop = std::min(first_stop, pending.find(stop));
  if (first_stop != std::string::npos) {
    stopped = true;
    std::string out = pending.substr(0, first_stop);
    pending.clear();
    return out;
  }
  size_t hold = 0;  // the longest suffix of pending that is a proper prefix of some stop string
  for (const std::string& stop : stop_strings)
    for (size_t len = std::min(stop.size() - (stop.empty() ? 0 : 1), pending.size()); len > hold; --len)
      if (pending.compare(pending.size() - len, len, stop, 0, len) == 0) {
        hold = len;
        break;
      }
  std::string out = pending.substr(0, pending.size() - hold);
  pending.erase(0, pending.size() - hold);
  return out;
}

}  // namespace slm
