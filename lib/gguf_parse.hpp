// Private to the GGUF loader: the parser that turns a file image into validated
// metadata and tensor infos. lib/gguf.cpp owns the image and the public GgufFile;
// lib/gguf_writer.cpp shares the value-type helpers.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slm/gguf.hpp"

namespace slm::gguf_detail {

// GGUF spec: general.alignment defaults to 32 when the key is absent.
inline constexpr uint64_t kDefaultAlignment = 32;
inline constexpr std::string_view kAlignmentKey = "general.alignment";

struct ParsedGguf {
  uint32_t version = 0;
  uint64_t alignment = kDefaultAlignment;
  uint64_t data_offset = 0;
  std::vector<GgufKeyValue> metadata;  // file order, keys unique
  std::vector<GgufTensor> tensors;     // file order, names unique, `data` points into the image
};

// Whether every tensor's data must lie inside the image (a whole file), or only the header and
// the tensor table are read (slm-plan, on a file that may still be downloading).
enum class TensorData { Required, NotRead };

// Parses and validates a GGUF image; `file_name` prefixes every error message. With
// TensorData::NotRead the tensors are checked as usual (types, shapes, alignment, no overlap,
// no wrap-around) except that their data may lie past the end of the image, and `data` is nullptr.
ParsedGguf parse_gguf(std::span<const uint8_t> image, const std::string& file_name,
                      TensorData tensor_data = TensorData::Required);

// Every integer type (not bool, not float): their values are held as int64_t.
bool is_integer_value_type(GgufValueType type);
// The value types whose raw id is known (0..12).
bool is_known_value_type(uint32_t raw_type);

// "a uint32", "an int8", "an array of string": a value's type as error messages name it.
std::string describe_value_type(const GgufValue& value);

// A key or tensor name made safe for a one-line message: control and non-ASCII bytes
// become \xNN, and very long names are cut (hostile files may hold anything there).
std::string printable_name(std::string_view name);

// Why `alignment` is not a usable general.alignment value, or empty when it is.
std::string alignment_problem(uint64_t alignment);

}  // namespace slm::gguf_detail
