// JSON in and out: value_from_json keeps key order; dump_json is Python's json.dumps.
#pragma once

#include <optional>
#include <string>

#include "slm/jinja.hpp"

namespace slm::jinja::detail {

// json.dumps options, as transformers' tojson filter passes them.
struct JsonFormat {
  std::optional<std::string> indent;  // None: one line; else newline + indent per level
  std::optional<std::string> item_separator;  // default ", " (or "," when indenting)
  std::string key_separator = ": ";
  bool ensure_ascii = false;
  bool sort_keys = false;
};

// Throws TypeError for values JSON cannot hold (undefined, functions, objects).
std::string dump_json(const Value& value, const JsonFormat& format);

}  // namespace slm::jinja::detail
