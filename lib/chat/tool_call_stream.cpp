#include "lib/chat/tool_call_stream.hpp"

#include <nlohmann/json.hpp>

namespace slm::chat {

namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

}  // namespace

JsonPrefixChecker::Step JsonPrefixChecker::value_done() {
  state_ = State::AfterValue;
  return open_.empty() ? Step::Done : Step::More;
}

JsonPrefixChecker::Step JsonPrefixChecker::after_value(char c) {
  if (is_space(c)) return Step::More;
  if (open_.empty()) return Step::Invalid;  // a complete top-level value takes nothing more
  const char container = open_.back();
  if (c == ',') {
    state_ = container == '{' ? State::Key : State::Value;
    return Step::More;
  }
  if ((container == '{' && c == '}') || (container == '[' && c == ']')) {
    open_.pop_back();
    return value_done();
  }
  return Step::Invalid;
}

JsonPrefixChecker::Step JsonPrefixChecker::number(char c) {
  const auto go = [&](NumberPart part) {
    number_ = part;
    return Step::More;
  };
  switch (number_) {
    case NumberPart::Sign:
      if (c == '0') return go(NumberPart::Zero);
      return is_digit(c) ? go(NumberPart::Int) : Step::Invalid;
    case NumberPart::Dot: return is_digit(c) ? go(NumberPart::Frac) : Step::Invalid;
    case NumberPart::Exp:
      if (c == '+' || c == '-') return go(NumberPart::ExpSign);
      return is_digit(c) ? go(NumberPart::ExpDigits) : Step::Invalid;
    case NumberPart::ExpSign: return is_digit(c) ? go(NumberPart::ExpDigits) : Step::Invalid;
    case NumberPart::Int:
    case NumberPart::Frac:
    case NumberPart::ExpDigits:
      if (is_digit(c)) return Step::More;
      [[fallthrough]];
    case NumberPart::Zero:
      if (c == '.' && (number_ == NumberPart::Zero || number_ == NumberPart::Int)) return go(NumberPart::Dot);
      if ((c == 'e' || c == 'E') && number_ != NumberPart::ExpDigits) return go(NumberPart::Exp);
      break;
  }
  // The number ended before this byte (inside a container: a number is never a whole value here).
  if (open_.empty()) return Step::Invalid;
  state_ = State::AfterValue;
  return after_value(c);
}

JsonPrefixChecker::Step JsonPrefixChecker::push(char c) {
  switch (state_) {
    case State::String:
      if (c == '"') {
        if (string_is_key_) {
          state_ = State::Colon;
          return Step::More;
        }
        return value_done();
      }
      if (c == '\\') state_ = State::Escape;
      return static_cast<unsigned char>(c) < 0x20 ? Step::Invalid : Step::More;
    case State::Escape:
      if (c == 'u') {
        state_ = State::Unicode;
        unicode_left_ = 4;
        return Step::More;
      }
      state_ = State::String;
      return std::string_view("\"\\/bfnrt").find(c) != std::string_view::npos ? Step::More : Step::Invalid;
    case State::Unicode:
      if (!is_hex(c)) return Step::Invalid;
      if (--unicode_left_ == 0) state_ = State::String;
      return Step::More;
    case State::Number: return number(c);
    case State::Literal:
      if (c != literal_.front()) return Step::Invalid;
      literal_.remove_prefix(1);
      return literal_.empty() ? value_done() : Step::More;
    case State::AfterValue: return after_value(c);
    case State::KeyOrClose:
      if (c == '}') {
        open_.pop_back();
        return value_done();
      }
      [[fallthrough]];
    case State::Key:
      if (is_space(c)) return Step::More;
      if (c != '"') return Step::Invalid;
      state_ = State::String;
      string_is_key_ = true;
      return Step::More;
    case State::Colon:
      if (is_space(c)) return Step::More;
      if (c != ':') return Step::Invalid;
      state_ = State::Value;
      return Step::More;
    case State::ValueOrClose:
      if (c == ']') {
        open_.pop_back();
        return value_done();
      }
      [[fallthrough]];
    case State::Value:
      if (is_space(c)) return Step::More;
      switch (c) {
        case '{': open_.push_back('{'); state_ = State::KeyOrClose; return Step::More;
        case '[': open_.push_back('['); state_ = State::ValueOrClose; return Step::More;
        case '"': state_ = State::String; string_is_key_ = false; return Step::More;
        case 't': state_ = State::Literal; literal_ = "rue"; return Step::More;
        case 'f': state_ = State::Literal; literal_ = "alse"; return Step::More;
        case 'n': state_ = State::Literal; literal_ = "ull"; return Step::More;
        case '-': state_ = State::Number; number_ = NumberPart::Sign; return Step::More;
        default:
          if (!is_digit(c)) return Step::Invalid;
          state_ = State::Number;
          number_ = c == '0' ? NumberPart::Zero : NumberPart::Int;
          return Step::More;
      }
  }
  return Step::Invalid;
}

void CallBlockReader::push(std::string_view bytes, std::vector<ToolCallChunk>& out) {
  for (const char c : bytes) {
    if (state_ == State::Deviated) return;
    step(c, out);
    ++offset_;
  }
}

bool CallBlockReader::complete() const {
  return state_ == State::End || (state_ == State::AfterCall && !in_list_);
}

void CallBlockReader::step(char c, std::vector<ToolCallChunk>& out) {
  // A key or the name: a JSON string read whole, then decoded.
  if (in_string_) {
    raw_ += c;
    if (escaped_) escaped_ = false;
    else if (c == '\\') escaped_ = true;
    else if (c == '"') in_string_ = false;
    if (in_string_) return;
    const nlohmann::json text = nlohmann::json::parse(raw_, nullptr, /*allow_exceptions=*/false);
    if (!text.is_string()) return deviate();
    const std::string value = text.get<std::string>();
    if (state_ == State::NameValue) {
      if (value.empty()) return deviate();
      name_ = value;
      state_ = State::AfterName;
    } else if (name_.empty() ? value == "name" : (value == "arguments" || value == "parameters")) {
      state_ = State::Colon;
    } else {
      deviate();
    }
    return;
  }
  if (state_ == State::Args) {
    const bool significant = arguments_.in_string() || !is_space(c);
    const JsonPrefixChecker::Step result = arguments_.push(c);
    if (result == JsonPrefixChecker::Step::Invalid) return deviate();
    if (significant) {
      if (out.empty() || out.back().index != next_index_ - 1) out.push_back({next_index_ - 1, "", ""});
      out.back().arguments += c;
    }
    if (result == JsonPrefixChecker::Step::Done) state_ = State::AfterArgs;
    return;
  }
  if (is_space(c)) return;
  const auto read_string = [&](State state) {
    if (c != '"') return deviate();
    state_ = state;
    in_string_ = true;
    raw_.assign(1, '"');  // (assigning the literal "\"" trips GCC 12's -Wrestrict false positive)
  };
  switch (state_) {
    case State::BodyStart:
      if (c == '[') {
        in_list_ = true;
        state_ = State::ItemStart;
        return;
      }
      [[fallthrough]];
    case State::ItemStart:
      if (c != '{') return deviate();
      name_.clear();
      state_ = State::Open;
      return;
    case State::Open: return read_string(State::Key);
    case State::Colon:
      if (c != ':') return deviate();
      state_ = name_.empty() ? State::NameValue : State::ArgsValue;
      return;
    case State::NameValue: return read_string(State::NameValue);
    case State::AfterName:
      if (c != ',') return deviate();
      state_ = State::Open;
      return;
    case State::ArgsValue:
      if (c != '{') return deviate();  // arguments as a string holding JSON: read whole
      arguments_ = JsonPrefixChecker();
      arguments_.push(c);
      out.push_back({next_index_++, name_, "{"});
      ++announced_;
      state_ = State::Args;
      return;
    case State::AfterArgs:
      if (c != '}') return deviate();
      state_ = State::AfterCall;
      return;
    case State::AfterCall:
      if (in_list_ && c == ',') state_ = State::ItemStart;
      else if (in_list_ && c == ']') state_ = State::End;
      else if (!in_list_ && c == ';' && format_ == ToolCallFormat::Llama3) state_ = State::ItemStart;
      else deviate();
      return;
    default: return deviate();
  }
}

}  // namespace slm::chat
