// Python str semantics on UTF-8 strings: code points, whitespace, case, repr, float repr.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace slm::jinja::detail {

// Decodes UTF-8. Invalid bytes map to U+DC80..U+DCFF (Python's surrogateescape), so
// decode followed by encode returns the original bytes.
std::u32string decode_utf8(std::string_view text);
void append_utf8(std::string& out, char32_t code_point);
std::string encode_utf8(std::u32string_view text);
bool is_ascii(std::string_view text);
std::size_t count_code_points(std::string_view text);

// str.isspace() of one code point (Unicode whitespace, as Python's str.strip() uses).
bool is_python_space(char32_t c);
// Python's \w: letters, digits and underscore; every non-ASCII letter counts as a letter.
bool is_word_char(char32_t c);

enum class StripSide { both, left, right };
// str.strip() / lstrip() / rstrip(): without `chars`, Unicode whitespace.
std::string python_strip(std::string_view text, StripSide side);
std::string python_strip_chars(std::string_view text, std::string_view chars, StripSide side);

// Case mapping for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic; other code
// points are left as they are.
char32_t to_upper(char32_t c);
char32_t to_lower(char32_t c);
bool is_cased_upper(char32_t c);
bool is_cased_lower(char32_t c);
std::string upper(std::string_view text);
std::string lower(std::string_view text);
std::string capitalize(std::string_view text);  // str.capitalize()

// repr() of a str: single quotes unless the text holds ' and no ", escapes for
// backslash, the quote and non-printable characters.
std::string python_string_repr(std::string_view text);
// repr() of a float: the shortest round-trip digits, "1.0", "1e+16", "1e-05", "inf", "nan".
std::string python_float_repr(double value);

}  // namespace slm::jinja::detail
