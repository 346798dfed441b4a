// Where tests find ../shared (models, goldens, vocab, templates) and the built tools.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <string>

namespace slm::test {

// $SLM_SHARED_DIR if set, else the CMake option SLM_SHARED_DIR (default ../shared).
std::filesystem::path shared_dir();
// A path below shared_dir().
std::filesystem::path shared_path(const std::string& relative);
// Directory holding the built slm-* tools.
std::filesystem::path bin_dir();
// Reads a whole file; throws std::runtime_error when it cannot.
std::string read_file(const std::filesystem::path& path);

// A GoogleTest parameter name from any text: every character but letters and digits becomes '_'.
inline std::string test_name_of(std::string text) {
  for (char& ch : text)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return text;
}

}  // namespace slm::test

// Skips the current test, with a message, when a shared asset is missing.
#define SLM_REQUIRE_ASSET(path_expr)                                                  \
  do {                                                                                \
    const std::filesystem::path slm_asset_path_ = (path_expr);                        \
    if (!std::filesystem::exists(slm_asset_path_))                                    \
      GTEST_SKIP() << "shared asset missing: " << slm_asset_path_.string()            \
                   << " (set SLM_SHARED_DIR or -DSLM_SHARED_DIR to the shared folder)"; \
  } while (0)
