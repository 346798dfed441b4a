// slm-draft-pair: a target and draft model pair whose agreement is controlled, built from one
// GGUF model, for measuring speculative decoding (see include/slm/draft_pair.hpp):
//
//   slm-draft-pair -m base.gguf --draft-layers 2 --residual-scale 0.1 --target t.gguf --draft d.gguf
//
// The target's layers from --draft-layers on add their attention and FFN outputs scaled by
// --residual-scale; the draft is the first --draft-layers layers with the same embeddings and head
// (--draft-head-type: that head in another type). --attention-scale scales every layer's attention
// output in both. --frequent-vocab N --frequent-share P make the ids below N take P of the greedy
// tokens, as real text's frequent tokens do.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>

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
    app.add_option("--attention-scale", options.attention_scale,
                   "multiplies every layer's attn_output in both (below 1: the next token depends mostly on the "
                   "last one, for extraction-style prompt lookup measurements)")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    std::string head_type;
    app.add_option("--draft-head-type", head_type,
                   "write the draft's output head in this type (e.g. Q4_0; default: the input's)")
        ->type_name("TYPE");
    auto* frequent_vocab =
        app.add_option("--frequent-vocab", options.frequent_vocab,
                       "make the token ids below N the frequent ones, as in a real BPE vocabulary: the head rows of "
                       "the others are scaled down in both models so that --frequent-share of the argmaxes fall below N")
            ->type_name("N")->check(CLI::PositiveNumber);
    app.add_option("--frequent-share", options.frequent_share,
                   "the share of greedy tokens below --frequent-vocab, e.g. what real text has (Qwen2.5 on "
                   "wiki.test.raw: 0.910 below 32768, 0.836 below 16384)")
        ->type_name("P")->needs(frequent_vocab)->check(CLI::Range(0.0, 1.0));
    frequent_vocab->needs("--frequent-share");
    if (auto exit_code = slm::tools::parse_command_line(app, argc, argv)) return *exit_code;
    if (!head_type.empty()) {
      options.draft_head_type = slm::ggml_type_from_name(head_type);
      if (!options.draft_head_type) {
        std::fprintf(stderr, "slm-draft-pair: error: unknown tensor type '%s' (see --help)\n", head_type.c_str());
        return 2;
      }
    }
    const float head_scale = slm::write_draft_pair(input, target, draft, options);
    fmt::print("wrote {} and {}\n", target, draft);
    if (options.frequent_vocab > 0)
      fmt::print("head rows of ids >= {} scaled by {:.4f} in both (for {:.3f} of the argmaxes below {})\n",
                 options.frequent_vocab, head_scale, options.frequent_share, options.frequent_vocab);
    return 0;
  });
}
