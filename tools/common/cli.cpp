#include "common/cli.hpp"

#include <cstdio>

namespace slm::tools {

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: error: %s (see --help)\n", app.get_name().c_str(), e.what());
    return 2;
  }
  return std::nullopt;
}

void add_state_checkpoint_options(CLI::App& app, int32_t& checkpoint_interval, int32_t& max_checkpoints) {
  app.add_option("--checkpoint-interval", checkpoint_interval,
                 "hybrid models (lfm2, qwen35): keep a snapshot of the recurrent state every N positions of a "
                 "prompt, besides those at the end of each prompt and turn, so that a later prompt sharing a prefix "
                 "re-evaluates at most N tokens of it (0: only those)")
      ->type_name("N")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--state-checkpoints", max_checkpoints,
                 "hybrid models: snapshots kept per sequence (past it, the one closest to the one before goes); "
                 "each takes one recurrent state's memory (printed at start) (0: none, a changed prefix is "
                 "evaluated from the start)")
      ->type_name("N")->capture_default_str()->check(CLI::NonNegativeNumber);
}

}  // namespace slm::tools
