// Checking outputs against their JSON Schemas with a validator that is not slm's: Debian's
// python3-jsonschema (Draft 2020-12, formats checked), run as a child process.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace slm::test {

bool python_jsonschema_available();

// `cases` is a list of {"schema": <schema>, "output": "<the output's text>"}. Returns how many
// outputs are not JSON or do not validate, or -1 when the validator could not run; `report`
// gets what it printed (one "INVALID <output> <reason>" line per failure).
int count_invalid_outputs(const nlohmann::json& cases, std::string& report);

}  // namespace slm::test
