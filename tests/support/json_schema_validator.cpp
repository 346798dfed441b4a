#include "support/json_schema_validator.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace slm::test {

bool python_jsonschema_available() {
  return std::system("python3 -c 'import jsonschema' > /dev/null 2>&1") == 0;
}

int count_invalid_outputs(const nlohmann::json& cases, std::string& report) {
  static std::atomic<int> calls{0};
  const auto dir = std::filesystem::temp_directory_path() /
                   ("slm_schema_check_" + std::to_string(::getpid()) + "_" + std::to_string(calls++));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "cases.json") << cases.dump();
  std::ofstream(dir / "check.py") << R"(import json, sys, jsonschema
bad = 0
for case in json.load(open(sys.argv[1])):
    try:
        value = json.loads(case["output"])
        jsonschema.Draft202012Validator(case["schema"], format_checker=jsonschema.FormatChecker()).validate(value)
    except Exception as e:
        bad += 1
        print("INVALID", json.dumps(case["output"]), str(e).splitlines()[0])
print("invalid", bad)
)";
  const std::string command = "python3 " + (dir / "check.py").string() + " " + (dir / "cases.json").string() + " 2>&1";
  report.clear();
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) report.append(buffer, n);
  const int status = pclose(pipe);
  std::filesystem::remove_all(dir);
  const size_t at = report.rfind("invalid ");
  if (status != 0 || at == std::string::npos) return -1;
  return std::atoi(report.c_str() + at + 8);
}

}  // namespace slm::test
