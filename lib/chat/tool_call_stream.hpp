// Reading a call block as it streams (lib/chat/tool_calls.hpp's parser uses it): the call's
// name as soon as its arguments open, then the arguments' text piece by piece, each piece final.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "lib/chat/tool_calls.hpp"

namespace slm::chat {

// Checks JSON byte by byte (RFC 8259; strings' bytes >= 0x80 are not checked as UTF-8): whether
// the bytes so far begin a valid value, and which byte completes it. For a value that is an
// object or an array (a number alone is only complete at the next byte).
class JsonPrefixChecker {
 public:
  enum class Step { More, Done, Invalid };
  Step push(char c);
  bool in_string() const { return state_ == State::String || state_ == State::Escape || state_ == State::Unicode; }

 private:
  enum class State { Value, ValueOrClose, KeyOrClose, Key, Colon, AfterValue, String, Escape, Unicode, Number, Literal };
  enum class NumberPart { Sign, Zero, Int, Dot, Frac, Exp, ExpSign, ExpDigits };
  Step value_done();
  Step after_value(char c);
  Step number(char c);

  State state_ = State::Value;
  std::vector<char> open_;       // the containers we are in: '{' or '['
  bool string_is_key_ = false;
  int unicode_left_ = 0;
  NumberPart number_ = NumberPart::Sign;
  std::string_view literal_;     // the rest of true/false/null to match
};

// One call block's body (after its opening marker), fed as it arrives. The shape it streams is
// the one models (and slm's grammars) write: a call object {"name": N, "arguments"|"parameters":
// {...}} or a list of them ([...]; Llama 3: ';'-separated). A call is announced (name and "{")
// when its arguments open; their bytes follow, whitespace outside strings dropped. Any other
// shape "deviates": the block is then read whole at its end, as before streaming.
class CallBlockReader {
 public:
  CallBlockReader(ToolCallFormat format, size_t first_index) : format_(format), next_index_(first_index) {}
  // Reads more of the body; the calls' pieces go to `out`.
  void push(std::string_view bytes, std::vector<ToolCallChunk>& out);
  size_t announced() const { return announced_; }     // calls announced in this block
  bool deviated() const { return state_ == State::Deviated; }
  size_t deviated_at() const { return deviated_at_; }  // body offset of the first byte that did not fit
  bool complete() const;                               // the body so far is whole calls

 private:
  enum class State { BodyStart, ItemStart, Open, Key, Colon, NameValue, AfterName, ArgsValue, Args, AfterArgs,
                     AfterCall, End, Deviated };
  void step(char c, std::vector<ToolCallChunk>& out);
  void deviate() {
    state_ = State::Deviated;
    deviated_at_ = offset_;
  }

  ToolCallFormat format_;
  size_t next_index_;
  size_t announced_ = 0;
  State state_ = State::BodyStart;
  size_t offset_ = 0;
  size_t deviated_at_ = 0;
  bool in_list_ = false;
  bool in_string_ = false, escaped_ = false;  // reading a key or the name
  std::string raw_;                           // the key or name read so far (JSON string text)
  std::string name_;
  JsonPrefixChecker arguments_;
};

}  // namespace slm::chat
