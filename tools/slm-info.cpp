// slm-info: what a GGUF file holds, in the spirit of llama.cpp's gguf-dump: the metadata
// in file order, the tensor table, and a summary (architecture, parameters, bytes by
// type, bits per weight). --json prints the same content as one JSON object.
// Long arrays and strings (vocabularies, chat templates) are abbreviated unless --full.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "common/arch_features.hpp"
#include "common/cli.hpp"
#include "common/tool_main.hpp"
#include "slm/gguf.hpp"

namespace {

using Json = nlohmann::ordered_json;
using slm::GgufArray;
using slm::GgufFile;
using slm::GgufValue;
using slm::GgufValueType;

struct Options {
  std::string model_path;
  bool json = false;
  bool full = false;
};

constexpr size_t kShownArrayElements = 8;
constexpr size_t kShownStringBytes = 80;

// ---------------------------------------------------------------------------
// Values: one scalar view for plain values and array elements alike
// ---------------------------------------------------------------------------

struct Scalar {
  GgufValueType type = GgufValueType::UINT8;
  int64_t integer = 0;  // integers; bool as 0/1
  double number = 0.0;  // FLOAT32 / FLOAT64
  std::string_view text;
};

Scalar scalar_of(const GgufValue& value) {
  Scalar scalar;
  scalar.type = value.type;
  if (const auto* integer = std::get_if<int64_t>(&value.value)) scalar.integer = *integer;
  if (const auto* number = std::get_if<double>(&value.value)) scalar.number = *number;
  if (const auto* flag = std::get_if<bool>(&value.value)) scalar.integer = *flag;
  if (const auto* text = std::get_if<std::string>(&value.value)) scalar.text = *text;
  return scalar;
}

Scalar array_element(const GgufArray& array, size_t index) {
  Scalar scalar;
  scalar.type = array.element_type;
  if (array.element_type == GgufValueType::STRING)
    scalar.text = array.strings[index];
  else if (array.element_type == GgufValueType::FLOAT32 || array.element_type == GgufValueType::FLOAT64)
    scalar.number = array.floats[index];
  else
    scalar.integer = array.ints[index];
  return scalar;
}

// At most kShownStringBytes unless `full`, cut on a UTF-8 character boundary.
std::string_view shown_text(std::string_view text, bool full) {
  if (full || text.size() <= kShownStringBytes) return text;
  size_t cut = kShownStringBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 continuation byte
  return text.substr(0, cut);
}

// Text kept on one line: quotes, backslashes and control bytes escaped.
std::string escaped(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
          out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        else
          out += c;
    }
  }
  return out;
}

std::string quoted(std::string_view text) { return "\"" + escaped(text) + "\""; }

// The shortest text that reads back as the stored value (float32 printed as a float).
std::string number_text(const Scalar& scalar) {
  if (scalar.type == GgufValueType::FLOAT32) return fmt::format("{}", static_cast<float>(scalar.number));
  return fmt::format("{}", scalar.number);
}

std::string scalar_text(const Scalar& scalar, bool full) {
  switch (scalar.type) {
    case GgufValueType::STRING: {
      const std::string_view shown = shown_text(scalar.text, full);
      if (shown.size() == scalar.text.size()) return quoted(shown);
      return fmt::format("{}... ({} bytes total)", quoted(shown), scalar.text.size());
    }
    case GgufValueType::BOOL: return scalar.integer ? "true" : "false";
    case GgufValueType::FLOAT32:
    case GgufValueType::FLOAT64: return number_text(scalar);
    default: return fmt::format("{}", scalar.integer);
  }
}

Json scalar_json(const Scalar& scalar, bool full, bool& truncated) {
  switch (scalar.type) {
    case GgufValueType::STRING: {
      const std::string_view shown = shown_text(scalar.text, full);
      truncated = truncated || shown.size() != scalar.text.size();
      return std::string(shown);
    }
    case GgufValueType::BOOL: return scalar.integer != 0;
    // Through the shortest decimal text, so that a float32 1e-5 prints as 1e-05, not 9.99999974737875e-06.
    // JSON has no NaN or infinity: those become null.
    case GgufValueType::FLOAT32:
    case GgufValueType::FLOAT64:
      return std::isfinite(scalar.number) ? Json::parse(number_text(scalar)) : Json();
    default: return scalar.integer;
  }
}

size_t shown_elements(const GgufArray& array, bool full) {
  return full ? array.size() : std::min<uint64_t>(array.size(), kShownArrayElements);
}

std::string value_text(const GgufValue& value, bool full) {
  const auto* array = std::get_if<GgufArray>(&value.value);
  if (!array) return scalar_text(scalar_of(value), full);
  const size_t shown = shown_elements(*array, full);
  std::string text = "[";
  for (size_t i = 0; i < shown; ++i) text += (i ? ", " : "") + scalar_text(array_element(*array, i), full);
  if (shown < array->size()) text += fmt::format("{}... ({} total)", shown ? ", " : "", array->size());
  return text + "]";
}

Json key_value_json(const slm::GgufKeyValue& kv, bool full) {
  Json entry = {{"key", kv.key}, {"type", slm::gguf_value_type_name(kv.value.type)}};
  bool truncated = false;
  if (const auto* array = std::get_if<GgufArray>(&kv.value.value)) {
    entry["element_type"] = slm::gguf_value_type_name(array->element_type);
    entry["count"] = array->size();
    Json values = Json::array();
    const size_t shown = shown_elements(*array, full);
    for (size_t i = 0; i < shown; ++i) values.push_back(scalar_json(array_element(*array, i), full, truncated));
    truncated = truncated || shown < array->size();
    entry["value"] = std::move(values);
  } else {
    entry["value"] = scalar_json(scalar_of(kv.value), full, truncated);
    if (kv.value.type == GgufValueType::STRING) entry["length"] = std::get<std::string>(kv.value.value).size();
  }
  if (truncated) entry["truncated"] = true;
  return entry;
}

// ---------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------

struct TypeTotal {
  uint64_t tensors = 0;
  uint64_t bytes = 0;
  uint64_t parameters = 0;
};

struct Summary {
  std::string architecture;  // general.architecture, empty when absent
  std::vector<std::string> features;  // what it does beyond Llama (common/arch_features.hpp)
  uint64_t parameters = 0;
  uint64_t tensor_bytes = 0;
  std::map<std::string, TypeTotal> by_type;  // type name -> totals
  double bits_per_weight() const { return parameters ? 8.0 * double(tensor_bytes) / double(parameters) : 0.0; }
};

Summary summarize(const GgufFile& gguf) {
  Summary summary;
  if (const GgufValue* architecture = gguf.find("general.architecture");
      architecture && architecture->type == GgufValueType::STRING)
    summary.architecture = std::get<std::string>(architecture->value);
  summary.features = slm::tools::architecture_features(gguf);
  for (const slm::GgufTensor& tensor : gguf.tensors()) {
    TypeTotal& total = summary.by_type[std::string(slm::ggml_type_name(tensor.type))];
    ++total.tensors;
    total.bytes += tensor.n_bytes;
    total.parameters += tensor.n_elements();
    summary.parameters += tensor.n_elements();
    summary.tensor_bytes += tensor.n_bytes;
  }
  return summary;
}

// 1185376 -> "1,185,376"
std::string with_commas(uint64_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// 260160 -> "260.16 K"
std::string scaled(uint64_t n) {
  const char* units[] = {"", " K", " M", " B", " T"};
  double value = double(n);
  size_t unit = 0;
  while (value >= 1000.0 && unit + 1 < std::size(units)) value /= 1000.0, ++unit;
  return unit == 0 ? std::to_string(n) : fmt::format("{:.2f}{}", value, units[unit]);
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

std::string type_column(const GgufValue& value) {
  std::string name(slm::gguf_value_type_name(value.type));
  if (const auto* array = std::get_if<GgufArray>(&value.value))
    name = fmt::format("[{}]", slm::gguf_value_type_name(array->element_type));
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

void print_text(const GgufFile& gguf, const Options& options) {
  fmt::print("* File: {}\n", gguf.path());
  fmt::print("  GGUF v{}, {} bytes, alignment {}, data section at offset {}\n", gguf.version(),
             with_commas(gguf.file_size()), gguf.alignment(), with_commas(gguf.data_offset()));

  // gguf-dump's columns: index, type, element count, key = value.
  fmt::print("\n* {} key/value pairs\n", gguf.metadata().size());
  for (size_t i = 0; i < gguf.metadata().size(); ++i) {
    const slm::GgufKeyValue& kv = gguf.metadata()[i];
    const auto* array = std::get_if<GgufArray>(&kv.value.value);
    fmt::print("{:7}: {:10} | {:8} | {} = {}\n", i + 1, type_column(kv.value), array ? array->size() : 1,
               escaped(kv.key),
               value_text(kv.value, options.full));
  }

  fmt::print("\n* {} tensors\n", gguf.tensors().size());
  fmt::print("{:>7}  {:>12} | {:>30} | {:7} | {:>13} | {}\n", "#", "elements", "shape", "type", "bytes", "name");
  for (size_t i = 0; i < gguf.tensors().size(); ++i) {
    const slm::GgufTensor& tensor = gguf.tensors()[i];
    fmt::print("{:7}: {:12} | {:6}, {:6}, {:6}, {:6} | {:7} | {:13} | {}\n", i + 1, tensor.n_elements(), tensor.ne[0],
               tensor.ne[1], tensor.ne[2], tensor.ne[3], slm::ggml_type_name(tensor.type), tensor.n_bytes,
               escaped(tensor.name));
  }

  const Summary summary = summarize(gguf);
  fmt::print("\n* Summary\n");
  fmt::print("  architecture:    {}\n", summary.architecture.empty() ? "(none)" : summary.architecture);
  if (!summary.features.empty()) fmt::print("  features:        {}\n", fmt::join(summary.features, "; "));
  fmt::print("  parameters:      {} ({})\n", with_commas(summary.parameters), scaled(summary.parameters));
  fmt::print("  tensor bytes:    {} ({:.2f} MB)\n", with_commas(summary.tensor_bytes), summary.tensor_bytes / 1e6);
  for (const auto& [type, total] : summary.by_type)
    fmt::print("  {:<16} {:4} tensors, {:>14} bytes, {:>14} parameters\n", type + ":", total.tensors,
               with_commas(total.bytes), with_commas(total.parameters));
  if (summary.parameters)
    fmt::print("  bits per weight: {:.2f}\n", summary.bits_per_weight());
  else
    fmt::print("  bits per weight: n/a (no tensors)\n");
}

void print_json(const GgufFile& gguf, const Options& options) {
  Json out = {{"file", gguf.path()},           {"version", gguf.version()},
              {"file_size", gguf.file_size()}, {"alignment", gguf.alignment()},
              {"data_offset", gguf.data_offset()}};
  out["metadata"] = Json::array();
  for (const slm::GgufKeyValue& kv : gguf.metadata()) out["metadata"].push_back(key_value_json(kv, options.full));
  out["tensors"] = Json::array();
  for (const slm::GgufTensor& tensor : gguf.tensors())
    out["tensors"].push_back({{"name", tensor.name},
                              {"type", slm::ggml_type_name(tensor.type)},
                              {"shape", std::vector<uint64_t>(tensor.ne.begin(), tensor.ne.begin() + tensor.n_dims)},
                              {"elements", tensor.n_elements()},
                              {"bytes", tensor.n_bytes},
                              {"offset", tensor.offset}});
  const Summary summary = summarize(gguf);
  Json by_type = Json::object();
  for (const auto& [type, total] : summary.by_type)
    by_type[type] = {{"tensors", total.tensors}, {"bytes", total.bytes}, {"parameters", total.parameters}};
  out["summary"] = {{"architecture", summary.architecture.empty() ? Json() : Json(summary.architecture)},
                    {"features", summary.features},
                    {"parameters", summary.parameters},
                    {"tensor_bytes", summary.tensor_bytes},
                    {"by_type", std::move(by_type)},
                    {"bits_per_weight", summary.parameters ? Json(summary.bits_per_weight()) : Json()}};
  // Hostile or byte-level token strings may not be UTF-8; replace such bytes with U+FFFD.
  fmt::print("{}\n", out.dump(1, ' ', false, Json::error_handler_t::replace));
}

}  // namespace

int main(int argc, char** argv) {
  return slm::tools::run_tool("slm-info", [&] {
    Options options;
    CLI::App app{"show the metadata, tensors and size summary of a GGUF file (like gguf-dump)", "slm-info"};
    app.add_option("model", options.model_path, "GGUF file to inspect")->required();
    app.add_flag("--json", options.json,
                 "print one JSON object (file, metadata, tensors, summary) instead of the text report");
    app.add_flag("--full", options.full,
                 fmt::format("print long strings and arrays in full (default: the first {} bytes of a string and the "
                             "first {} elements of an array)",
                             kShownStringBytes, kShownArrayElements));
    if (auto exit_code = slm::tools::parse_command_line(app, argc, argv)) return *exit_code;
    const GgufFile gguf = GgufFile::open(options.model_path);
    if (options.json)
      print_json(gguf, options);
    else
      print_text(gguf, options);
    return 0;
  });
}
