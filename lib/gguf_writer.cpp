// GGUF v3 writer; the layout is described in gguf_parse.cpp and include/slm/gguf_writer.hpp.
#include "slm/gguf_writer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>

#include "gguf_parse.hpp"

namespace slm {
namespace {

constexpr uint32_t kWrittenVersion = 3;

[[noreturn]] void writer_error(std::string_view what, std::string_view problem) {
  throw Error(fmt::format("GgufWriter: {}: {}", what, problem));
}

uint64_t align_up(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// Little-endian encoding into a growing buffer.
struct Encoder {
  std::vector<uint8_t>& out;

  void unsigned_bytes(uint64_t value, unsigned n_bytes) {
    for (unsigned i = 0; i < n_bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
  }
  void u32(uint32_t value) { unsigned_bytes(value, 4); }
  void u64(uint64_t value) { unsigned_bytes(value, 8); }
  void string(std::string_view text) {
    u64(text.size());
    out.insert(out.end(), text.begin(), text.end());
  }

  // One element of type `type` whose value is held as int64 (integers, bool) or double.
  void integer(GgufValueType type, int64_t value) {
    switch (type) {
      case GgufValueType::UINT8:
      case GgufValueType::INT8:
      case GgufValueType::BOOL: unsigned_bytes(static_cast<uint64_t>(value), 1); break;
      case GgufValueType::UINT16:
      case GgufValueType::INT16: unsigned_bytes(static_cast<uint64_t>(value), 2); break;
      case GgufValueType::UINT32:
      case GgufValueType::INT32: unsigned_bytes(static_cast<uint64_t>(value), 4); break;
      default: u64(static_cast<uint64_t>(value)); break;
    }
  }
  void floating(GgufValueType type, double value) {
    if (type == GgufValueType::FLOAT32)
      u32(std::bit_cast<uint32_t>(static_cast<float>(value)));
    else
      u64(std::bit_cast<uint64_t>(value));
  }

  void value(const GgufValue& value) {
    u32(static_cast<uint32_t>(value.type));
    switch (value.type) {
      case GgufValueType::STRING: string(std::get<std::string>(value.value)); break;
      case GgufValueType::BOOL: integer(value.type, std::get<bool>(value.value) ? 1 : 0); break;
      case GgufValueType::FLOAT32:
      case GgufValueType::FLOAT64: floating(value.type, std::get<double>(value.value)); break;
      case GgufValueType::ARRAY: array(std::get<GgufArray>(value.value)); break;
      default: integer(value.type, std::get<int64_t>(value.value)); break;
    }
  }

  void array(const GgufArray& array) {
    u32(static_cast<uint32_t>(array.element_type));
    u64(array.size());
    for (const std::string& text : array.strings) string(text);
    for (double number : array.floats) floating(array.element_type, number);
    for (int64_t number : array.ints) integer(array.element_type, number);
  }
};

bool integer_fits(GgufValueType type, int64_t value) {
  switch (type) {
    case GgufValueType::UINT8: return std::in_range<uint8_t>(value);
    case GgufValueType::INT8: return std::in_range<int8_t>(value);
    case GgufValueType::UINT16: return std::in_range<uint16_t>(value);
    case GgufValueType::INT16: return std::in_range<int16_t>(value);
    case GgufValueType::UINT32: return std::in_range<uint32_t>(value);
    case GgufValueType::INT32: return std::in_range<int32_t>(value);
    case GgufValueType::UINT64: return value >= 0;
    case GgufValueType::BOOL: return value == 0 || value == 1;
    default: return true;
  }
}

void check_array(std::string_view what, const GgufArray& array) {
  const GgufValueType type = array.element_type;
  if (!gguf_detail::is_known_value_type(static_cast<uint32_t>(type)) || type == GgufValueType::ARRAY)
    writer_error(what, fmt::format("element type {} is not a scalar or string type", static_cast<uint32_t>(type)));
  const bool holds_strings = type == GgufValueType::STRING;
  const bool holds_floats = type == GgufValueType::FLOAT32 || type == GgufValueType::FLOAT64;
  const bool holds_ints = !holds_strings && !holds_floats;
  if ((!holds_strings && !array.strings.empty()) || (!holds_floats && !array.floats.empty()) ||
      (!holds_ints && !array.ints.empty()))
    writer_error(what, fmt::format("array of {} holds elements of another kind", gguf_value_type_name(type)));
  if (array.size() > GgufLimits::max_array_elements)
    writer_error(what, fmt::format("array of {} elements exceeds the limit of {}", array.size(),
                                   GgufLimits::max_array_elements));
  for (const std::string& text : array.strings)
    if (text.size() > GgufLimits::max_string_bytes) writer_error(what, "array string exceeds the length limit");
  for (int64_t number : array.ints)
    if (!integer_fits(type, number))
      writer_error(what, fmt::format("element {} does not fit {}", number, gguf_value_type_name(type)));
}

void check_value(std::string_view what, const GgufValue& value) {
  const GgufValueType type = value.type;
  if (!gguf_detail::is_known_value_type(static_cast<uint32_t>(type)))
    writer_error(what, fmt::format("unknown value type {}", static_cast<uint32_t>(type)));
  bool held_matches = false;
  switch (type) {
    case GgufValueType::STRING: held_matches = std::holds_alternative<std::string>(value.value); break;
    case GgufValueType::ARRAY: held_matches = std::holds_alternative<GgufArray>(value.value); break;
    case GgufValueType::BOOL: held_matches = std::holds_alternative<bool>(value.value); break;
    case GgufValueType::FLOAT32:
    case GgufValueType::FLOAT64: held_matches = std::holds_alternative<double>(value.value); break;
    default: held_matches = std::holds_alternative<int64_t>(value.value); break;
  }
  if (!held_matches)
    writer_error(what, fmt::format("value of type {} holds another kind of value", gguf_value_type_name(type)));
  if (const auto* text = std::get_if<std::string>(&value.value); text && text->size() > GgufLimits::max_string_bytes)
    writer_error(what, "string exceeds the length limit");
  if (const auto* array = std::get_if<GgufArray>(&value.value)) check_array(what, *array);
  if (const auto* number = std::get_if<int64_t>(&value.value); number && !integer_fits(type, *number))
    writer_error(what, fmt::format("{} does not fit {}", *number, gguf_value_type_name(type)));
}

GgufValue integer_value(GgufValueType type, int64_t number) { return GgufValue{type, number}; }

}  // namespace

void GgufWriter::add(std::string key, GgufValue value) {
  const std::string what = "key " + gguf_detail::printable_name(key);
  if (key.size() > GgufLimits::max_key_bytes) writer_error(what, "key exceeds the length limit");
  if (std::any_of(metadata_.begin(), metadata_.end(), [&](const GgufKeyValue& kv) { return kv.key == key; }))
    writer_error(what, "duplicate key");
  if (metadata_.size() >= GgufLimits::max_kv_count) writer_error(what, "too many keys");
  check_value(what, value);
  if (key == gguf_detail::kAlignmentKey) {
    if (value.type != GgufValueType::UINT32) writer_error(what, "alignment must be a uint32");
    const std::string problem = gguf_detail::alignment_problem(static_cast<uint64_t>(std::get<int64_t>(value.value)));
    if (!problem.empty()) writer_error(what, problem);
  }
  metadata_.push_back(GgufKeyValue{std::move(key), std::move(value), 0});
}

void GgufWriter::add_u32(std::string key, uint32_t value) { add(std::move(key), integer_value(GgufValueType::UINT32, value)); }
void GgufWriter::add_i32(std::string key, int32_t value) { add(std::move(key), integer_value(GgufValueType::INT32, value)); }
void GgufWriter::add_u64(std::string key, uint64_t value) {
  if (!std::in_range<int64_t>(value)) writer_error("key " + gguf_detail::printable_name(key), "uint64 above 2^63-1");
  add(std::move(key), integer_value(GgufValueType::UINT64, static_cast<int64_t>(value)));
}
void GgufWriter::add_f32(std::string key, float value) { add(std::move(key), GgufValue{GgufValueType::FLOAT32, double{value}}); }
void GgufWriter::add_bool(std::string key, bool value) { add(std::move(key), GgufValue{GgufValueType::BOOL, value}); }
void GgufWriter::add_string(std::string key, std::string value) {
  add(std::move(key), GgufValue{GgufValueType::STRING, std::move(value)});
}
void GgufWriter::add_array(std::string key, GgufArray value) {
  add(std::move(key), GgufValue{GgufValueType::ARRAY, std::move(value)});
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<uint64_t> shape, std::vector<uint8_t> data) {
  const std::string what = fmt::format("tensor '{}'", gguf_detail::printable_name(name));
  if (name.size() > GgufLimits::max_tensor_name_bytes) writer_error(what, "name exceeds the length limit");
  if (std::any_of(tensors_.begin(), tensors_.end(), [&](const PendingTensor& t) { return t.info.name == name; }))
    writer_error(what, "duplicate tensor name");
  const auto info = ggml_type_info(static_cast<uint32_t>(type));
  if (!info || !info->weight_format) writer_error(what, "type is not a weight format");
  if (shape.empty() || shape.size() > GgufLimits::max_dims)
    writer_error(what, fmt::format("{} dimensions, expected 1 to {}", shape.size(), GgufLimits::max_dims));

  PendingTensor tensor;
  tensor.info.name = std::move(name);
  tensor.info.type = type;
  tensor.info.n_dims = static_cast<uint32_t>(shape.size());
  uint64_t n_elements = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    tensor.info.ne[d] = shape[d];
    if (shape[d] == 0 || __builtin_mul_overflow(n_elements, shape[d], &n_elements))
      writer_error(what, fmt::format("shape {} is empty or too large", tensor.info.shape_string()));
  }
  if (shape[0] % info->block_size != 0)
    writer_error(what, fmt::format("row length {} is not a multiple of the {} block size {}", shape[0], info->name,
                                   info->block_size));
  tensor.info.n_bytes = n_elements / info->block_size * info->block_bytes;
  if (data.size() != tensor.info.n_bytes)
    writer_error(what, fmt::format("{} {} needs {} bytes of data, got {}", info->name, tensor.info.shape_string(),
                                   tensor.info.n_bytes, data.size()));
  tensor.data = std::move(data);
  tensors_.push_back(std::move(tensor));
}

uint64_t GgufWriter::alignment() const {
  for (const GgufKeyValue& kv : metadata_)
    if (kv.key == gguf_detail::kAlignmentKey) return static_cast<uint64_t>(std::get<int64_t>(kv.value.value));
  return gguf_detail::kDefaultAlignment;
}

std::vector<uint8_t> GgufWriter::encode_head() const {
  std::vector<uint8_t> head;
  Encoder encoder{head};
  head.insert(head.end(), {'G', 'G', 'U', 'F'});
  encoder.u32(kWrittenVersion);
  encoder.u64(tensors_.size());
  encoder.u64(metadata_.size());
  for (const GgufKeyValue& kv : metadata_) {
    encoder.string(kv.key);
    encoder.value(kv.value);
  }
  uint64_t data_offset = 0;  // relative to the data section; each tensor starts aligned
  for (const PendingTensor& tensor : tensors_) {
    encoder.string(tensor.info.name);
    encoder.u32(tensor.info.n_dims);
    for (uint32_t d = 0; d < tensor.info.n_dims; ++d) encoder.u64(tensor.info.ne[d]);
    encoder.u32(static_cast<uint32_t>(tensor.info.type));
    encoder.u64(data_offset);
    data_offset = align_up(data_offset + tensor.info.n_bytes, alignment());
  }
  head.resize(align_up(head.size(), alignment()), 0);
  return head;
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  std::vector<uint8_t> bytes = encode_head();
  const uint64_t data_offset = bytes.size();
  for (const PendingTensor& tensor : tensors_) {
    bytes.insert(bytes.end(), tensor.data.begin(), tensor.data.end());
    bytes.resize(data_offset + align_up(bytes.size() - data_offset, alignment()), 0);
  }
  return bytes;
}

void GgufWriter::write_file(const std::string& path) const {
  struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
  if (!file) throw Error(fmt::format("{}: cannot open for writing: {}", path, std::strerror(errno)));
  const auto write = [&](const uint8_t* bytes, size_t n) {
    if (n != 0 && std::fwrite(bytes, 1, n, file.get()) != n)
      throw Error(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
  };
  const std::vector<uint8_t> head = encode_head();
  write(head.data(), head.size());
  const std::vector<uint8_t> zeros(alignment(), 0);
  for (const PendingTensor& tensor : tensors_) {
    write(tensor.data.data(), tensor.data.size());
    write(zeros.data(), align_up(tensor.data.size(), alignment()) - tensor.data.size());
  }
  if (std::fclose(file.release()) != 0) throw Error(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
}

}  // namespace slm
