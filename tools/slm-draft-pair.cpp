// slm-draft-pair: a target and draft model pair whose agreement is controlled, built from one
// GGUF model, for measuring speculative decoding (see include/slm/draft_pair.hpp):
//
//   slm-draft-pair -m base.gguf --draft-layers 2 --residual-scale 0.1 --target t.gguf --draft d.gguf
//
// The target's layers from --draft-layers on add their attention and FFN outputs scaled by
// --residual-scale; the draft is the first --draft-layers layers with the same embeddings and head.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "common/cli.hpp"
#include "common/tool_main.hpp"
#include "slm/draft_pair.hpp"

int main(int argc, char** argv) {
  return slm::tools::run_tool("slm-draft-pair", [&] {
    std::string input, target, draft;
    slm::DraftPairOptions options;
    CLI::App app{"write a target/draft model pair whose agreement --residual-scale controls", "slm-draft-pair"};
    app.add_option("-m,--model", input, "the GGUF model both are made from")->required()->type_name("FILE");
    app.add_option("--target", target, "the target model to write")->required()->type_name("FILE");
    app.add_option("--draft", draft, "the draft model to write")->required()->type_name("FILE");
    app.add_option("--draft-layers", options.draft_layers, "layers the draft keeps")->capture_default_str();
    app.add_option("--residual-scale", options.residual_scale,
                   "multiplies the target's later layers' attn_output and ffn_down (0: the pair always agrees)")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    if (auto exit_code = slm::tools::parse_command_line(app, argc, argv)) return *exit_code;
    slm::write_draft_pair(input, target, draft, options);
    fmt::print("wrote {} and {}\n", target, draft);
    return 0;
  });
}
