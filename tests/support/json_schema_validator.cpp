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
  // The formats are Draft 2020-12's: jsonschema.FormatChecker() holds every draft's at once, and
  // its "time" is Draft 3's (HH:MM:SS, no offset), which rejects RFC 3339's "22:33:55Z". Debian
  // 12's jsonschema (4.10) checks "time" and "date-time" only with rfc3339-validator, which Debian
  // does not package; then Python's own ISO 8601 parser checks them, with the offset RFC 3339
  // requires (that parser also takes a few shapes RFC 3339 does not, e.g. no seconds).
  std::ofstream(dir / "check.py") << R"(import datetime, json, sys, jsonschema
draft = getattr(jsonschema.Draft202012Validator, "FORMAT_CHECKER", None) or jsonschema.draft202012_format_checker
checker = jsonschema.FormatChecker(formats=())
checker.checkers = dict(draft.checkers)
def with_offset(text):
    return not isinstance(text, str) or datetime.datetime.fromisoformat(text).tzinfo is not None
if "date-time" not in checker.checkers:
    checker.checks("date-time", raises=ValueError)(with_offset)
if "time" not in checker.checkers:
    checker.checks("time", raises=ValueError)(lambda text: not isinstance(text, str) or with_offset("1970-01-01T" + text))
bad = 0
for case in json.load(open(sys.argv[1])):
    try:
        value = json.loads(case["output"])
        jsonschema.Draft202012Validator(case["schema"], format_checker=checker).validate(value)
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
