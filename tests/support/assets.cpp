#include "support/assets.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace slm::test {

std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("SLM_SHARED_DIR"); env && *env) return env;
  return SLM_SHARED_DIR_DEFAULT;
}

std::filesystem::path shared_path(const std::string& relative) { return shared_dir() / relative; }

std::filesystem::path bin_dir() { return SLM_BIN_DIR; }

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace slm::test
