// Helpers shared by the jinja unit tests: render a template string against a JSON context.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

#include "slm/jinja.hpp"

namespace slm::test {

inline jinja::RenderOptions fixed_clock_options() {
  jinja::RenderOptions options;
  std::tm now{};
  now.tm_year = 2026 - 1900;
  now.tm_mon = 10;
  now.tm_mday = 22;
  now.tm_hour = 12;
  options.fixed_now = now;
  return options;
}

// Renders `source` with the variables of the JSON object `context`.
inline std::string render(std::string_view source, std::string_view context = "{}") {
  return jinja::Template::parse(source).render(jinja::value_from_json(context), fixed_clock_options());
}

// The message of the slm::Error that parsing or rendering throws, or "" when it succeeds.
inline std::string render_error(std::string_view source, std::string_view context = "{}",
                                const jinja::RenderOptions& options = fixed_clock_options()) {
  try {
    jinja::Template::parse(source).render(jinja::value_from_json(context), options);
  } catch (const slm::Error& error) {
    return error.what();
  }
  return "";
}

}  // namespace slm::test
