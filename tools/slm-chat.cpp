// slm-chat: talk to a local model with its own chat template. One-shot with -p, a
// conversation otherwise (at a terminal, or one message per line from a pipe); --print-prompt
// shows the exact prompt a conversation file renders to. tools/README-chat.md documents it all.
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/chat_commands.hpp"
#include "common/chat_input.hpp"
#include "common/chat_output.hpp"
#include "lib/chat/chat_prompt.hpp"
#include "common/chat_session.hpp"
#include "common/cli.hpp"
#include "common/tool_main.hpp"
#include "slm/grammar.hpp"

#ifdef SLM_HAVE_LIBEDIT
#include <editline/readline.h>

#include <cstdlib>
#endif

namespace {

using namespace slm::tools;

std::atomic<bool> g_cancel{false};
std::atomic<bool> g_generating{false};

// Ctrl-C during a reply stops the reply and keeps the conversation; at the prompt it exits.
// (libedit restores the terminal before it passes the signal on to this handler.)
void on_sigint(int) {
  if (g_generating.load()) {
    g_cancel.store(true);
    return;
  }
  if (isatty(STDOUT_FILENO)) (void)!write(STDOUT_FILENO, "\n", 1);
  _exit(130);
}

LineEditor make_line_editor() {
  LineEditor editor;
#ifdef SLM_HAVE_LIBEDIT
  editor.read_line = [](const std::string& prompt) -> std::optional<std::string> {
    char* line = readline(prompt.c_str());
    if (line == nullptr) return std::nullopt;
    std::string text(line);
    std::free(line);
    return text;
  };
  editor.add_history = [](const std::string& entry) { add_history(entry.c_str()); };
#endif
  return editor;
}

struct ChatOptions {
  std::string model_path, draft_model_path, prompt, system_prompt, kv_type = "f16";
  std::string activations = "int16";
  std::string template_file, builtin_template, messages_file, context_policy = "drop-oldest";
  std::optional<std::string> bos_token, eos_token, template_kwargs;
  bool raw = false, verbose = false, json = false, hide_thinking = false, print_prompt = false;
  int n_predict = -1, context = 0, threads = 0;
  int32_t checkpoint_interval = slm::SessionOptions{}.checkpoint_interval;
  int32_t max_checkpoints = slm::SessionOptions{}.max_checkpoints;
  std::string grammar_file, grammar_text, json_schema_file;  // constrained output (at most one)
  bool json_object = false;
  slm::SamplerParams sampling;
  slm::SpeculativeOptions speculative;
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw slm::Error(fmt::format("cannot read {}", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TemplateRequest template_request(const ChatOptions& o) {
  return {o.template_file, builtin_format_from_name(o.builtin_template)};
}

// --bos-token / --eos-token override the model's tokens; --chat-template-kwargs adds variables.
void apply_template_flags(const ChatOptions& o, ChatTemplate& chat_template) {
  if (o.bos_token) chat_template.bos_token = o.bos_token;
  if (o.eos_token) chat_template.eos_token = o.eos_token;
  if (o.template_kwargs) {
    chat_template.extra_vars = slm::jinja::value_from_json(*o.template_kwargs);
    if (!chat_template.extra_vars.is_dict()) throw slm::Error("--chat-template-kwargs must be a JSON object");
  }
}

// --print-prompt: the exact prompt, byte for byte, with no newline added.
int print_prompt(const ChatOptions& o) {
  std::shared_ptr<const slm::Model> model;
  if (!o.model_path.empty()) model = slm::Model::load(o.model_path, slm::tools::load_options(o.activations));
  std::string warning;
  ChatTemplate chat_template = choose_chat_template(model.get(), template_request(o), warning);
  apply_template_flags(o, chat_template);
  if (o.verbose) std::fprintf(stderr, "slm-chat: chat template: %s\n", chat_template.origin.c_str());
  if (!warning.empty()) std::fprintf(stderr, "slm-chat: %s\n", warning.c_str());

  ConversationFile conversation;
  if (!o.messages_file.empty()) {
    conversation = parse_conversation_file(read_text_file(o.messages_file));
  } else {
    std::vector<ChatMessage> messages;
    if (!o.system_prompt.empty()) messages.push_back({"system", o.system_prompt});
    if (!o.prompt.empty()) messages.push_back({"user", o.prompt});
    conversation.messages = messages_to_value(messages);
  }
  std::string prompt;
  try {
    prompt = render_conversation_file(chat_template, conversation);
  } catch (const slm::Error& e) {
    std::string message = e.what();  // the contract is one line on stderr
    for (char& c : message)
      if (c == '\n' || c == '\r') c = ' ';
    throw slm::Error(message);
  }
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  return 0;
}

// --grammar-file, --grammar, --json-schema or --json-object; errors are one line (slm::Error).
std::optional<slm::Grammar> grammar_from_flags(const ChatOptions& o) {
  if (!o.grammar_file.empty()) return slm::compile_gbnf(read_text_file(o.grammar_file));
  if (!o.grammar_text.empty()) return slm::compile_gbnf(o.grammar_text);
  if (!o.json_schema_file.empty()) {
    try {
      return slm::grammar_from_json_schema(read_text_file(o.json_schema_file));
    } catch (const slm::Error& e) {
      throw slm::Error(fmt::format("{}: {}", o.json_schema_file, e.what()));
    }
  }
  if (o.json_object) return slm::json_object_grammar();
  return std::nullopt;
}

slm::SessionOptions session_options(const ChatOptions& o) {
  slm::SessionOptions s;
  s.n_ctx = o.context;
  s.n_threads = o.threads;
  s.kv_type = slm::kv_type_named(o.kv_type);
  s.checkpoint_interval = o.checkpoint_interval;
  s.max_checkpoints = o.max_checkpoints;
  return s;
}

void print_model_info(const slm::Model& model, const ChatSession& chat) {
  std::fprintf(stderr, "slm-chat: %s (%s), context %d, %d threads\nslm-chat: chat template: %s\n",
               model.config().name.c_str(), model.config().arch.c_str(), chat.session().n_ctx(),
               chat.session().n_threads(), chat.chat_template().origin.c_str());
}

// Reads messages until the end of input, /exit, or a full conversation under --context-policy stop.
void converse(ChatSession& chat, ChatOutput& output, bool raw, const std::string& model_name) {
  const bool terminal = isatty(STDIN_FILENO);
  if (terminal && !output.settings().json)
    std::fprintf(stderr, "slm-chat: chatting with %s. /help lists the commands; Ctrl-C stops a reply, Ctrl-D exits.\n",
                 model_name.c_str());
  MessageReader reader(STDIN_FILENO, terminal, !output.settings().json, make_line_editor());
  while (true) {
    std::optional<std::string> message = reader.read_message();
    if (!message) {
      if (terminal && !output.settings().json) std::fputs("\n", stdout);  // Ctrl-D leaves the cursor after the prompt
      return;
    }
    if (message->empty()) continue;
    if (is_command(*message)) {
      if (run_command(*message, chat, output) == CommandOutcome::Exit) return;
      continue;
    }
    if (message->starts_with("//")) message->erase(0, 1);
    g_cancel = false;
    g_generating = true;
    TurnOutcome outcome = TurnOutcome::Replied;
    if (raw) chat.complete_raw(*message, &g_cancel);
    else outcome = chat.reply_to(*message, &g_cancel);
    g_generating = false;
    if (outcome == TurnOutcome::ConversationFull) return;
  }
}

int run_chat(const ChatOptions& o) {
  const std::optional<slm::Grammar> grammar = grammar_from_flags(o);  // a bad grammar fails before the model loads
  const std::shared_ptr<const slm::Model> model = slm::Model::load(o.model_path, slm::tools::load_options(o.activations));
  const bool speculative = !o.draft_model_path.empty() || o.speculative.lookup_ngram > 0;
  ChatOutput output(OutputSettings{o.json, isatty(STDOUT_FILENO) != 0, o.hide_thinking, o.verbose, speculative});
  std::string warning;
  ChatTemplate chat_template = choose_chat_template(model.get(), template_request(o), warning);
  apply_template_flags(o, chat_template);
  if (!warning.empty()) output.notice(warning);

  ChatSettings settings;
  settings.n_predict = o.n_predict;
  settings.context_policy = o.context_policy == "stop" ? ContextPolicy::Stop : ContextPolicy::DropOldest;
  settings.grammar = grammar;
  if (!o.draft_model_path.empty()) settings.draft_model = slm::Model::load(o.draft_model_path, slm::tools::load_options(o.activations));
  settings.speculative = o.speculative;
  ChatSession chat(model, session_options(o), o.sampling, std::move(chat_template), settings, output);
  if (!o.system_prompt.empty()) chat.set_system_prompt(o.system_prompt);
  if (o.verbose) print_model_info(*model, chat);
  std::signal(SIGINT, on_sigint);

  if (o.prompt.empty()) {
    converse(chat, output, o.raw, model->config().name);
    return 0;
  }
  g_generating = true;
  if (o.raw) {
    chat.complete_raw(o.prompt, &g_cancel);
    return 0;
  }
  return chat.reply_to(o.prompt, &g_cancel) == TurnOutcome::Replied ? 0 : 1;
}

const char* const modes_help = R"(
Modes:
  -p TEXT         one-shot: print the reply to TEXT and exit (exit 1 when the message cannot be answered)
  (no -p)         a conversation: at a terminal with line editing and history, a trailing '\' continuing
                  the line and a pasted block taken as one message; from a pipe, one message per line
                  (blank lines skipped) and only the replies on stdout, each followed by a newline
  --print-prompt  print the exact prompt for --messages FILE (or --system/-p) and exit; no model is
                  needed with --chat-template-file or --builtin-template (--bos-token/--eos-token then
                  give the tokens; left out, they are undefined in the template)

Commands (in a conversation):
)";

const char* const policy_and_events_help = R"(
Context policy (before each turn the prompt must leave min(n-predict or 256, ctx/2) tokens for the reply):
  drop-oldest     drop whole turns after the system prompt, oldest first; a message too long even then
                  is refused with one line and the conversation goes on
  stop            say so and end the conversation (exit 0; exit 1 with -p)

--json events, one object per line on stdout:
  {"event":"token","text":"..."}  ("thinking":true inside <think>)
  {"event":"reply","text":"...","stop_reason":"...","n_prompt_tokens":N,"n_prompt_evaluated":N,
   "n_generated":N,"ttft_ms":X,"prompt_tokens_per_second":X,"generation_tokens_per_second":X,
   "confidence":{"mean_logprob":X,"min_logprob":X,"mean_entropy":X,"low_margin_share":X,
                 "low_margin_threshold":0.1,"n_tokens":N}}
  {"event":"context_trimmed","dropped_messages":N,"n_prompt_tokens":N}
  {"event":"info","message":"..."}  {"event":"error","message":"..."}
)";

std::string help_footer() {
  std::string commands;
  std::istringstream lines(chat_commands_help);
  for (std::string line; std::getline(lines, line);) commands += "  " + line + "\n";
  return modes_help + commands + policy_and_events_help;
}

}  // namespace

int main(int argc, char** argv) {
  return slm::tools::run_tool("slm-chat", [&] {
    ChatOptions o;
    slm::SamplerParams& s = o.sampling;
    CLI::App app{"chat with a local GGUF model using its own chat template (a conversation, or one-shot with -p)",
                 "slm-chat"};
    app.footer(help_footer());
    app.add_option("-m,--model", o.model_path,
                   "GGUF model file (not needed for --print-prompt with --chat-template-file or --builtin-template)")
        ->type_name("FILE");
    app.add_option("-p,--prompt", o.prompt, "one-shot: answer this message, print the reply and exit");
    app.add_flag("--raw", o.raw, "no chat template: continue the text as it is");
    app.add_option("--system", o.system_prompt, "system prompt for the conversation");
    app.add_option("--chat-template-file", o.template_file,
                   "Jinja chat template to use instead of the model's own (tokenizer.chat_template)")
        ->type_name("FILE");
    app.add_option("--builtin-template", o.builtin_template,
                   "use a built-in template instead of the model's: chatml, llama3 or plain (a transcript)")
        ->check(CLI::IsMember({"chatml", "llama3", "plain"}))->excludes("--chat-template-file");
    app.add_option("--messages", o.messages_file,
                   "with --print-prompt: a JSON conversation {\"messages\": [...], \"tools\": [...], "
                   "\"add_generation_prompt\": true, <other keys>: template variables}")
        ->type_name("FILE");
    app.add_flag("--print-prompt", o.print_prompt, "print the rendered prompt byte for byte (no newline added) and exit");
    app.add_option("--chat-template-kwargs", o.template_kwargs,
                   "more template variables as a JSON object, e.g. '{\"enable_thinking\": false}'");
    app.add_option("--bos-token", o.bos_token, "text of the template's bos_token (default: the model's BOS token)");
    app.add_option("--eos-token", o.eos_token, "text of the template's eos_token (default: the model's EOS token)");
    app.add_option("-n,--n-predict", o.n_predict, "tokens to generate per reply at most (-1: until the end of the turn)")
        ->default_val(-1);
    app.add_option("-c,--ctx-size", o.context, "context size in tokens (0: the model's, at most 4096)")
        ->default_val(0)->check(CLI::NonNegativeNumber);
    app.add_option("--context-policy", o.context_policy, "when the conversation outgrows the context: drop-oldest or stop")
        ->check(CLI::IsMember({"drop-oldest", "stop"}))->default_val("drop-oldest");
    app.add_option("-t,--threads", o.threads, "threads (0: the number of physical cores)")
        ->default_val(0)->check(CLI::NonNegativeNumber);
    app.add_option("--temp", s.temperature, "temperature; 0 picks the most likely token (greedy)")->default_val(0.8f);
    app.add_option("--top-k", s.top_k, "keep the k most likely tokens (0: off)")->default_val(40);
    app.add_option("--top-p", s.top_p, "keep the smallest set of tokens whose probability reaches p (1: off)")
        ->default_val(0.95f);
    app.add_option("--min-p", s.min_p, "drop tokens less likely than min-p times the best (0: off)")->default_val(0.05f);
    app.add_option("--repeat-penalty", s.repeat_penalty, "penalize tokens seen in the last --repeat-last-n (1: off)")
        ->default_val(1.0f)->check(CLI::PositiveNumber);
    app.add_option("--repeat-last-n", s.penalty_last_n, "how many recent tokens the penalties look at")
        ->default_val(64)->check(CLI::NonNegativeNumber);
    app.add_option("--presence-penalty", s.presence_penalty, "subtract from tokens seen recently (0: off)")
        ->default_val(0.0f);
    app.add_option("--frequency-penalty", s.frequency_penalty, "subtract per recent occurrence (0: off)")
        ->default_val(0.0f);
    app.add_option("-s,--seed", s.seed, "random seed: the same seed and settings give the same reply")
        ->default_val(s.seed);
    slm::tools::add_kv_type_option(app, o.kv_type, "default f16");
    slm::tools::add_activations_option(app, o.activations);
    slm::tools::add_state_checkpoint_options(app, o.checkpoint_interval, o.max_checkpoints);
    slm::tools::add_speculative_options(
        app, o.draft_model_path, o.speculative,
        "speculative decoding: a smaller GGUF model with the same vocabulary drafts tokens that the model checks in "
        "one batch (greedy output is byte-identical; sampling keeps the model's distribution)");
    auto* grammar_file = app.add_option("--grammar-file", o.grammar_file,
                                        "constrain every reply to a GBNF grammar (llama.cpp's format, rule 'root')")
                             ->type_name("FILE.gbnf");
    auto* grammar_text = app.add_option("--grammar", o.grammar_text, "constrain every reply to this GBNF grammar text")
                             ->type_name("TEXT")->excludes(grammar_file);
    auto* json_schema = app.add_option("--json-schema", o.json_schema_file, "constrain every reply to JSON valid against "
                                       "this JSON Schema (unsupported keywords are an error)")
                            ->type_name("FILE.json")->excludes(grammar_file)->excludes(grammar_text);
    app.add_flag("--json-object", o.json_object, "constrain every reply to one JSON object (any keys)")
        ->excludes(grammar_file)->excludes(grammar_text)->excludes(json_schema);
    app.add_flag("--json", o.json, "print one JSON object per line per event (see below) instead of text");
    app.add_flag("--hide-thinking", o.hide_thinking, "leave out a reasoning model's <think>...</think> section");
    app.add_flag("-v,--verbose", o.verbose,
                 "print the model, the chat template in use, and after every reply the timings "
                 "(prompt and generation tok/s, time to first token) and, when speculating, the drafted and "
                 "accepted tokens and the acceptance rate");
    if (auto exit_code = slm::tools::parse_command_line(app, argc, argv)) return *exit_code;
    if (o.print_prompt) return print_prompt(o);
    if (o.model_path.empty()) {
      std::fputs("slm-chat: error: -m MODEL is required (see --help)\n", stderr);
      return 2;
    }
    return run_chat(o);
  });
}
