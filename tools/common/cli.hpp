// Command-line parsing shared by the tools: --help prints the help and exits 0; a
// wrong flag prints one line "<tool>: error: <what> (see --help)" and exits 2.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>

namespace slm::tools {

// nullopt: go on; otherwise the exit code main() should return.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

}  // namespace slm::tools
