// The building blocks of the JSON Schema converter: the fixed JSON rules, literals, integer
// ranges and the regex subset of 'pattern', each as GBNF text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "slm/grammar.hpp"

namespace slm::grammar {

// (name, body) of the fixed rules: value object array string char key-char number integer
// boolean null sp format-date format-time format-date-time format-uuid format-email.
const std::vector<std::pair<std::string, std::string>>& primitive_rules();
std::vector<std::string> primitive_dependencies(const std::string& name);

// A GBNF string literal matching exactly these bytes.
std::string gbnf_literal(const std::string& bytes);
// A GBNF literal of the compact JSON text of a value.
std::string json_literal(const nlohmann::ordered_json& value);
// One character as it may appear inside a GBNF character class.
std::string gbnf_class_char(const std::string& utf8_char);

// Integers in [lo, hi] (either bound may be absent), without leading zeros.
std::string integer_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi);

// The body of a JSON string (between the quotes) whose decoded text matches `pattern`, as a GBNF
// expression. The regex subset: literals and escapes (\. \\ \/ \- \n \t ...), '.', classes
// [...] [^...] with ranges, \d \w \s \D \W \S, groups (...) and (?:...), '|', and the
// quantifiers * + ? {n} {n,} {n,m}. ^ and $ only at the ends; without them the match may be
// anywhere in the string (as JSON Schema says). \s matches a space only, and classes never
// produce '"', '\' or control characters (their JSON escapes are not generated): the strings
// generated are a subset of those the pattern allows. Anything else (backreferences,
// lookaround, lazy quantifiers, \b) is an error naming 'pattern'.
std::string regex_to_gbnf(const std::string& pattern, const GrammarLimits& limits);

}  // namespace slm::grammar
