// Every slm-* tool runs its body through run_tool(), so that all of them report
// failures the same way: one line "error: ..." on stderr and a non-zero exit.
#pragma once

#include <functional>

namespace slm::tools {

// Calls body(); returns its exit code, or 1 after printing "error: <what>" for any
// exception (slm::Error, std::bad_alloc, ...). Never lets an exception escape main().
int run_tool(const char* tool_name, const std::function<int()>& body);

}  // namespace slm::tools
