// The GGUF parser. Layout (GGUF v2/v3, little-endian):
//   header:       "GGUF" magic, uint32 version, uint64 tensor_count, uint64 kv_count
//   metadata:     kv_count × { gguf_string key, uint32 value_type, value }
//   tensor infos: tensor_count × { gguf_string name, uint32 n_dims, uint64 ne[n_dims],
//                                  uint32 ggml_type, uint64 offset }
//   padding to general.alignment, then the data section; tensor offsets are relative to it.
// A gguf_string is a uint64 byte length followed by the bytes. An array value is a uint32
// element type, a uint64 count, then the elements.
//
// Every field is read through ByteReader, which checks the bytes exist first; every count
// is checked against the bytes left before anything is sized by it.
#include "gguf_parse.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <functional>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace slm::gguf_detail {
namespace {

// The smallest encodings, for checking a count against the bytes left before trusting it.
constexpr uint64_t kMinKeyValueBytes = 8 + 4 + 1;            // key length, value type, one-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // name length, n_dims, one dim, type, offset
constexpr uint64_t kStringLengthBytes = 8;

class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> image, const std::string& file_name)
      : image_(image), file_name_(file_name) {}

  uint64_t offset() const { return offset_; }
  uint64_t file_size() const { return image_.size(); }
  uint64_t remaining() const { return image_.size() - offset_; }
  const std::string& file_name() const { return file_name_; }

  // "<file>: <what> at offset <at>: <problem>", the one shape of every parse error.
  [[noreturn]] void fail(uint64_t at, std::string_view what, std::string_view problem) const {
    throw Error(fmt::format("{}: {} at offset {}: {}", file_name_, what, at, problem));
  }

  // A little-endian unsigned integer of n_bytes, assembled byte by byte so that the
  // host's own byte order does not matter.
  uint64_t read_unsigned(unsigned n_bytes, std::string_view what) {
    if (n_bytes > remaining())
      fail(offset_, what,
           fmt::format("needs {} bytes, but the file ends at {} (truncated)", n_bytes, image_.size()));
    uint64_t value = 0;
    for (unsigned i = 0; i < n_bytes; ++i) value |= uint64_t{image_[offset_ + i]} << (8 * i);
    offset_ += n_bytes;
    return value;
  }
  uint32_t read_u32(std::string_view what) { return static_cast<uint32_t>(read_unsigned(4, what)); }
  uint64_t read_u64(std::string_view what) { return read_unsigned(8, what); }

  std::string read_string(std::string_view what, uint64_t max_bytes) {
    const uint64_t at = offset_;
    const uint64_t length = read_u64(what);
    if (length > max_bytes)
      fail(at, what, fmt::format("string length {} exceeds the limit of {} bytes", length, max_bytes));
    if (length > remaining())
      fail(at, what,
           fmt::format("string of {} bytes extends past the end of the file (size {})", length,
                       image_.size()));
    std::string text(reinterpret_cast<const char*>(image_.data() + offset_), length);
    offset_ += length;
    return text;
  }

  // Fails unless `count` items of at least `min_item_bytes` each fit in the bytes left.
  void require_items(uint64_t at, std::string_view what, uint64_t count, uint64_t min_item_bytes,
                     std::string_view item_name) const {
    uint64_t needed = 0;
    if (__builtin_mul_overflow(count, min_item_bytes, &needed) || needed > remaining())
      fail(at, what,
           fmt::format("{} {} need at least {} bytes each, but only {} bytes remain before the end "
                       "of the file (size {})",
                       count, item_name, min_item_bytes, remaining(), image_.size()));
  }

 private:
  std::span<const uint8_t> image_;
  const std::string& file_name_;
  uint64_t offset_ = 0;
};

struct TransparentStringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};
// Name -> file offset of its first definition, for duplicate detection.
using FirstSeenAt = std::unordered_map<std::string, uint64_t, TransparentStringHash, std::equal_to<>>;

// ---------------------------------------------------------------------------
// Header
// ---------------------------------------------------------------------------

void check_magic(ByteReader& reader, std::span<const uint8_t> image) {
  reader.read_unsigned(4, "magic");
  static constexpr uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};
  if (!std::equal(kMagic, kMagic + 4, image.begin()))
    reader.fail(0, "magic",
                fmt::format("found bytes {:02x} {:02x} {:02x} {:02x}, expected \"GGUF\" (not a GGUF file)",
                            image[0], image[1], image[2], image[3]));
}

uint32_t read_version(ByteReader& reader) {
  const uint32_t version = reader.read_u32("version");
  if (version == 2 || version == 3) return version;
  // GGUF v3 allows big-endian files; their version field read little-endian is a
  // small number byte-swapped, e.g. 3 reads as 0x03000000.
  if (version != 0 && (version & 0xFFFF) == 0)
    reader.fail(4, "version",
                fmt::format("big-endian GGUF is not supported (the version reads 0x{:08x}, which is {} "
                            "byte-swapped), expected a little-endian file",
                            version, __builtin_bswap32(version)));
  if (version == 1)
    reader.fail(4, "version",
                "GGUF v1 is not supported (it used 32-bit counts and lengths), expected version 2 or 3; "
                "re-convert the model with a current llama.cpp");
  reader.fail(4, "version", fmt::format("unsupported GGUF version {}, expected 2 or 3", version));
}

uint64_t read_count(ByteReader& reader, std::string_view what, uint64_t limit) {
  const uint64_t at = reader.offset();
  const uint64_t count = reader.read_u64(what);
  if (count > limit) reader.fail(at, what, fmt::format("{} exceeds the limit of {}", count, limit));
  return count;
}

// ---------------------------------------------------------------------------
// Metadata values
// ---------------------------------------------------------------------------

// Bytes of one encoded element: the fixed size of a scalar, or the length prefix of a string.
uint64_t min_encoded_bytes(GgufValueType type) {
  switch (type) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16:
    case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
    case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64:
    case GgufValueType::INT64:
    case GgufValueType::FLOAT64: return 8;
    case GgufValueType::STRING: return kStringLengthBytes;
    case GgufValueType::ARRAY: return 4 + 8;
  }
  return 1;
}

GgufValueType read_value_type(ByteReader& reader, std::string_view what) {
  const uint64_t at = reader.offset();
  const uint32_t raw_type = reader.read_u32(what);
  if (!is_known_value_type(raw_type))
    reader.fail(at, what, fmt::format("unknown value type {}, expected 0 to 12", raw_type));
  return static_cast<GgufValueType>(raw_type);
}

int64_t read_integer(ByteReader& reader, GgufValueType type, std::string_view what) {
  const uint64_t at = reader.offset();
  const auto bytes = static_cast<unsigned>(min_encoded_bytes(type));
  const uint64_t raw = reader.read_unsigned(bytes, what);
  switch (type) {
    case GgufValueType::INT8: return static_cast<int8_t>(raw);
    case GgufValueType::INT16: return static_cast<int16_t>(raw);
    case GgufValueType::INT32: return static_cast<int32_t>(raw);
    case GgufValueType::INT64: return static_cast<int64_t>(raw);
    case GgufValueType::UINT64:
      if (raw > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        reader.fail(at, what,
                    fmt::format("uint64 value {} is above 2^63-1, the largest integer slm holds", raw));
      return static_cast<int64_t>(raw);
    default: return static_cast<int64_t>(raw);  // the unsigned types narrower than 64 bits
  }
}

double read_float(ByteReader& reader, GgufValueType type, std::string_view what) {
  if (type == GgufValueType::FLOAT32) return std::bit_cast<float>(reader.read_u32(what));
  return std::bit_cast<double>(reader.read_u64(what));
}

bool read_bool(ByteReader& reader, std::string_view what) {
  const uint64_t at = reader.offset();
  const uint64_t byte = reader.read_unsigned(1, what);
  if (byte > 1) reader.fail(at, what, fmt::format("bool byte is {}, expected 0 or 1", byte));
  return byte == 1;
}

GgufArray read_array(ByteReader& reader, std::string_view what) {
  GgufArray array;
  const uint64_t type_at = reader.offset();
  array.element_type = read_value_type(reader, what);
  if (array.element_type == GgufValueType::ARRAY)
    reader.fail(type_at, what, "arrays of arrays are not supported, expected an array of scalars or strings");

  const uint64_t count_at = reader.offset();
  const uint64_t count = reader.read_u64(what);
  if (count > GgufLimits::max_array_elements)
    reader.fail(count_at, what,
                fmt::format("array of {} elements exceeds the limit of {}", count,
                            GgufLimits::max_array_elements));
  const std::string element_name = fmt::format("{} elements", gguf_value_type_name(array.element_type));
  reader.require_items(count_at, what, count, min_encoded_bytes(array.element_type), element_name);

  // `count` is now bounded by the bytes left, so sizing by it is safe.
  switch (array.element_type) {
    case GgufValueType::STRING:
      array.strings.reserve(count);
      for (uint64_t i = 0; i < count; ++i)
        array.strings.push_back(reader.read_string(what, GgufLimits::max_string_bytes));
      break;
    case GgufValueType::FLOAT32:
    case GgufValueType::FLOAT64:
      array.floats.reserve(count);
      for (uint64_t i = 0; i < count; ++i) array.floats.push_back(read_float(reader, array.element_type, what));
      break;
    case GgufValueType::BOOL:
      array.ints.reserve(count);
      for (uint64_t i = 0; i < count; ++i) array.ints.push_back(read_bool(reader, what) ? 1 : 0);
      break;
    default:
      array.ints.reserve(count);
      for (uint64_t i = 0; i < count; ++i) array.ints.push_back(read_integer(reader, array.element_type, what));
      break;
  }
  return array;
}

GgufValue read_value(ByteReader& reader, GgufValueType type, std::string_view what) {
  GgufValue value;
  value.type = type;
  switch (type) {
    case GgufValueType::STRING: value.value = reader.read_string(what, GgufLimits::max_string_bytes); break;
    case GgufValueType::ARRAY: value.value = read_array(reader, what); break;
    case GgufValueType::BOOL: value.value = read_bool(reader, what); break;
    case GgufValueType::FLOAT32:
    case GgufValueType::FLOAT64: value.value = read_float(reader, type, what); break;
    default: value.value = read_integer(reader, type, what); break;
  }
  return value;
}

std::vector<GgufKeyValue> read_metadata(ByteReader& reader, uint64_t kv_count) {
  std::vector<GgufKeyValue> metadata;
  metadata.reserve(kv_count);  // bounded: checked against the bytes left
  FirstSeenAt key_first_seen;
  for (uint64_t i = 0; i < kv_count; ++i) {
    GgufKeyValue entry;
    entry.file_offset = reader.offset();
    entry.key = reader.read_string(fmt::format("key #{}", i), GgufLimits::max_key_bytes);
    const std::string what = "key " + printable_name(entry.key);
    if (const auto [first, inserted] = key_first_seen.emplace(entry.key, entry.file_offset); !inserted)
      reader.fail(entry.file_offset, what, fmt::format("duplicate key, first defined at offset {}", first->second));
    const GgufValueType type = read_value_type(reader, what);
    entry.value = read_value(reader, type, what);
    metadata.push_back(std::move(entry));
  }
  return metadata;
}

uint64_t alignment_from_metadata(const std::vector<GgufKeyValue>& metadata, const std::string& file_name) {
  const auto entry = std::find_if(metadata.begin(), metadata.end(),
                                  [](const GgufKeyValue& kv) { return kv.key == kAlignmentKey; });
  if (entry == metadata.end()) return kDefaultAlignment;
  const std::string where = fmt::format("{}: key {} at offset {}", file_name, kAlignmentKey, entry->file_offset);
  if (entry->value.type != GgufValueType::UINT32)
    throw Error(fmt::format("{} is {}, expected uint32", where, describe_value_type(entry->value)));
  const auto alignment = static_cast<uint64_t>(std::get<int64_t>(entry->value.value));
  if (const std::string problem = alignment_problem(alignment); !problem.empty())
    throw Error(fmt::format("{}: {}", where, problem));
  return alignment;
}

// ---------------------------------------------------------------------------
// Tensor infos and their placement in the data section
// ---------------------------------------------------------------------------

// ggml's bytes of a tensor: rows of ne[0] weights in blocks, times the number of rows.
uint64_t checked_tensor_bytes(const ByteReader& reader, uint64_t at, std::string_view what,
                              const GgufTensor& tensor, const GgmlTypeInfo& info) {
  if (tensor.ne[0] % info.block_size != 0)
    reader.fail(at, what,
                fmt::format("row length ne[0] = {} is not a multiple of the {} block size {}", tensor.ne[0],
                            info.name, info.block_size));
  uint64_t n_elements = 1;
  for (uint32_t d = 0; d < tensor.n_dims; ++d)
    if (__builtin_mul_overflow(n_elements, tensor.ne[d], &n_elements))
      reader.fail(at, what, fmt::format("shape {} has more than 2^64 elements", tensor.shape_string()));
  uint64_t row_bytes = 0;
  uint64_t n_bytes = 0;
  if (__builtin_mul_overflow(tensor.ne[0] / info.block_size, uint64_t{info.block_bytes}, &row_bytes) ||
      __builtin_mul_overflow(row_bytes, n_elements / tensor.ne[0], &n_bytes))
    reader.fail(at, what, fmt::format("byte size of {} {} overflows 64 bits", info.name, tensor.shape_string()));
  return n_bytes;
}

GgufTensor read_tensor_info(ByteReader& reader, uint64_t index, uint64_t alignment, FirstSeenAt& name_first_seen) {
  GgufTensor tensor;
  const uint64_t at = reader.offset();
  tensor.name = reader.read_string(fmt::format("tensor #{} name", index), GgufLimits::max_tensor_name_bytes);
  const std::string what = fmt::format("tensor '{}'", printable_name(tensor.name));
  if (const auto [first, inserted] = name_first_seen.emplace(tensor.name, at); !inserted)
    reader.fail(at, what, fmt::format("duplicate tensor name, first defined at offset {}", first->second));

  const uint64_t n_dims_at = reader.offset();
  tensor.n_dims = reader.read_u32(what);
  if (tensor.n_dims < 1 || tensor.n_dims > GgufLimits::max_dims)
    reader.fail(n_dims_at, what, fmt::format("n_dims is {}, expected 1 to {}", tensor.n_dims, GgufLimits::max_dims));
  for (uint32_t d = 0; d < tensor.n_dims; ++d) {
    const uint64_t dim_at = reader.offset();
    tensor.ne[d] = reader.read_u64(what);
    if (tensor.ne[d] == 0) reader.fail(dim_at, what, fmt::format("ne[{}] is 0, expected at least 1", d));
  }

  const uint64_t type_at = reader.offset();
  const uint32_t raw_type = reader.read_u32(what);
  const auto info = ggml_type_info(raw_type);
  if (!info) reader.fail(type_at, what, fmt::format("unknown tensor type id {}", raw_type));
  if (!info->weight_format)
    reader.fail(type_at, what, fmt::format("type {} (id {}) is not a weight format", info->name, raw_type));
  tensor.type = info->type;
  tensor.n_bytes = checked_tensor_bytes(reader, at, what, tensor, *info);

  const uint64_t offset_at = reader.offset();
  tensor.offset = reader.read_u64(what);
  if (tensor.offset % alignment != 0)
    reader.fail(offset_at, what,
                fmt::format("data offset {} is not a multiple of the alignment {}", tensor.offset, alignment));
  return tensor;
}

// Points each tensor into the image after checking that it lies inside the data section
// and that no two tensors share bytes.
void place_tensors(const ByteReader& reader, std::span<const uint8_t> image, uint64_t data_offset,
                   std::vector<GgufTensor>& tensors, const std::vector<uint64_t>& info_at, TensorData tensor_data) {
  std::vector<uint64_t> begins(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensor& tensor = tensors[i];
    const std::string what = fmt::format("tensor '{}'", printable_name(tensor.name));
    uint64_t begin = 0;
    uint64_t end = 0;
    if (__builtin_add_overflow(data_offset, tensor.offset, &begin) ||
        __builtin_add_overflow(begin, tensor.n_bytes, &end))
      reader.fail(info_at[i], what,
                  fmt::format("data at {} + {} with {} bytes wraps around 2^64 (file size {})", data_offset,
                              tensor.offset, tensor.n_bytes, image.size()));
    if (tensor_data == TensorData::Required && end > image.size())
      reader.fail(info_at[i], what,
                  fmt::format("data [{}, {}) extends past the end of the file (size {})", begin, end, image.size()));
    begins[i] = begin;
  }

  std::vector<size_t> by_begin(tensors.size());
  std::iota(by_begin.begin(), by_begin.end(), size_t{0});
  std::sort(by_begin.begin(), by_begin.end(), [&](size_t a, size_t b) { return begins[a] < begins[b]; });
  for (size_t k = 1; k < by_begin.size(); ++k) {
    const size_t previous = by_begin[k - 1];
    const size_t current = by_begin[k];
    const uint64_t previous_end = begins[previous] + tensors[previous].n_bytes;
    if (begins[current] < previous_end)
      reader.fail(info_at[current], fmt::format("tensor '{}'", printable_name(tensors[current].name)),
                  fmt::format("data [{}, {}) overlaps tensor '{}' at [{}, {})", begins[current],
                              begins[current] + tensors[current].n_bytes, printable_name(tensors[previous].name),
                              begins[previous], previous_end));
  }

  if (tensor_data == TensorData::Required)
    for (size_t i = 0; i < tensors.size(); ++i) tensors[i].data = image.data() + begins[i];
}

}  // namespace

ParsedGguf parse_gguf(std::span<const uint8_t> image, const std::string& file_name, TensorData tensor_data) {
  if (image.empty()) throw Error(fmt::format("{}: empty file, expected a GGUF file", file_name));
  ByteReader reader(image, file_name);
  ParsedGguf parsed;

  check_magic(reader, image);
  parsed.version = read_version(reader);
  const uint64_t tensor_count_at = reader.offset();
  const uint64_t tensor_count = read_count(reader, "tensor count", GgufLimits::max_tensor_count);
  const uint64_t kv_count_at = reader.offset();
  const uint64_t kv_count = read_count(reader, "key/value count", GgufLimits::max_kv_count);
  reader.require_items(kv_count_at, "key/value count", kv_count, kMinKeyValueBytes, "key/value pairs");

  parsed.metadata = read_metadata(reader, kv_count);
  parsed.alignment = alignment_from_metadata(parsed.metadata, file_name);

  reader.require_items(tensor_count_at, "tensor count", tensor_count, kMinTensorInfoBytes, "tensor infos");
  parsed.tensors.reserve(tensor_count);  // bounded: checked against the bytes left
  std::vector<uint64_t> info_at;
  FirstSeenAt name_first_seen;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    info_at.push_back(reader.offset());
    parsed.tensors.push_back(read_tensor_info(reader, i, parsed.alignment, name_first_seen));
  }

  // The data section starts at the first multiple of the alignment after the tensor
  // infos. Files without tensors (vocab-only files) may end before that padding.
  const uint64_t infos_end = reader.offset();
  const uint64_t data_offset = (infos_end + parsed.alignment - 1) / parsed.alignment * parsed.alignment;
  if (parsed.tensors.empty()) {
    parsed.data_offset = std::min<uint64_t>(data_offset, image.size());
    return parsed;
  }
  if (tensor_data == TensorData::Required && data_offset > image.size())
    reader.fail(infos_end, "data section",
                fmt::format("starts at {} (tensor infos end at {}, aligned to {}), past the end of the file "
                            "(size {})",
                            data_offset, infos_end, parsed.alignment, image.size()));
  parsed.data_offset = data_offset;
  place_tensors(reader, image, data_offset, parsed.tensors, info_at, tensor_data);
  return parsed;
}

// ---------------------------------------------------------------------------
// Helpers shared with gguf.cpp and gguf_writer.cpp
// ---------------------------------------------------------------------------

bool is_integer_value_type(GgufValueType type) {
  switch (type) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::UINT16:
    case GgufValueType::INT16:
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
    case GgufValueType::UINT64:
    case GgufValueType::INT64: return true;
    default: return false;
  }
}

bool is_known_value_type(uint32_t raw_type) { return raw_type <= static_cast<uint32_t>(GgufValueType::FLOAT64); }

std::string describe_value_type(const GgufValue& value) {
  std::string name(gguf_value_type_name(value.type));
  if (const auto* array = std::get_if<GgufArray>(&value.value))
    name += fmt::format(" of {}", gguf_value_type_name(array->element_type));
  const bool vowel_sound = name.front() == 'i' || name.front() == 'a';  // "an int8", "an array", "a uint32"
  return (vowel_sound ? "an " : "a ") + name;
}

std::string printable_name(std::string_view name) {
  constexpr size_t kMaxShown = 120;
  std::string shown;
  for (size_t i = 0; i < name.size() && i < kMaxShown; ++i) {
    const auto byte = static_cast<unsigned char>(name[i]);
    if (byte >= 0x20 && byte < 0x7f && byte != '\\')
      shown += static_cast<char>(byte);
    else
      shown += fmt::format("\\x{:02x}", byte);
  }
  if (name.size() > kMaxShown) shown += fmt::format("... ({} bytes)", name.size());
  return shown;
}

std::string alignment_problem(uint64_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    return fmt::format("alignment {} is not a power of two", alignment);
  if (alignment > GgufLimits::max_alignment)
    return fmt::format("alignment {} exceeds the limit of {}", alignment, GgufLimits::max_alignment);
  return {};
}

}  // namespace slm::gguf_detail
