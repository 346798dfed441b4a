#include "common/tool_main.hpp"

#include <cstdio>
#include <exception>
#include <new>

#include "slm/error.hpp"

namespace slm::tools {

int run_tool(const char* tool_name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const slm::Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", tool_name, e.what());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: error: out of memory\n", tool_name);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", tool_name, e.what());
  }
  return 1;
}

}  // namespace slm::tools
