// GGUF reader. Every file is treated as hostile: each count, length, offset and
// size is checked against the file with overflow-safe arithmetic before use, and
// any violation throws slm::Error naming the file, the key or tensor, the byte
// offset and what was expected. The file is mapped read-only (or read into
// memory when mmap is impossible); tensor data pointers point into that mapping.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "slm/error.hpp"
#include "slm/ggml_type.hpp"

namespace slm {

// On-disk gguf_type ids of metadata values.
enum class GgufValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

std::string_view gguf_value_type_name(GgufValueType type);  // "uint32", "string", "array", ...

// Hard limits that bound what a hostile file can make us do.
struct GgufLimits {
  static constexpr uint64_t max_string_bytes = 1ull << 24;      // 16 MiB (chat templates are ~10 KiB)
  static constexpr uint64_t max_array_elements = 1ull << 24;    // 16 Mi (vocabularies are ~256 Ki)
  static constexpr uint64_t max_key_bytes = 1024;
  static constexpr uint64_t max_tensor_name_bytes = 256;        // ggml's GGML_MAX_NAME is 64
  static constexpr uint64_t max_kv_count = 1ull << 16;
  static constexpr uint64_t max_tensor_count = 1ull << 20;
  static constexpr uint32_t max_dims = 4;
  static constexpr uint64_t max_alignment = 1ull << 16;
};

// An array value. Arrays of arrays are rejected by the loader (no model needs them).
struct GgufArray {
  GgufValueType element_type = GgufValueType::UINT8;
  std::vector<int64_t> ints;        // any integer or bool element type (uint64 values > INT64_MAX are rejected)
  std::vector<double> floats;       // FLOAT32 / FLOAT64 elements
  std::vector<std::string> strings; // STRING elements
  uint64_t size() const;
  bool operator==(const GgufArray&) const = default;
};

// One metadata value. Integers of every width are held as int64_t (uint64 values above
// INT64_MAX are rejected), floats as double; `type` keeps the on-disk type for display.
struct GgufValue {
  GgufValueType type = GgufValueType::UINT8;
  std::variant<int64_t, double, bool, std::string, GgufArray> value;
  bool operator==(const GgufValue&) const = default;
};

struct GgufKeyValue {
  std::string key;
  GgufValue value;
  uint64_t file_offset = 0;  // where the key starts, for error messages
};

struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  uint32_t n_dims = 0;
  std::array<uint64_t, 4> ne{1, 1, 1, 1};  // ne[0] is the row length (contiguous dimension)
  uint64_t offset = 0;                      // relative to the start of the data section
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;            // inside the mapping; valid while the GgufFile lives

  uint64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  uint64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  std::string shape_string() const;  // "[896, 151936]"
};

class GgufFile {
 public:
  // Maps (or reads) and fully validates the file. Throws slm::Error.
  static GgufFile open(const std::string& path);
  // Maps (or reads) the file and validates its header and tensor table only, with the same
  // checks and errors as open(), except that tensors may lie past the end of the file: one
  // still downloading, or cut short, can be planned for (slm-plan). Every tensor's `data` is
  // nullptr.
  static GgufFile open_header(const std::string& path);
  // Parses a file image held in memory (tests, fuzzing). `name` stands in for the path in errors.
  static GgufFile from_bytes(std::vector<uint8_t> bytes, std::string name = "<memory>");
  // open_header() of a file image held in memory.
  static GgufFile header_from_bytes(std::vector<uint8_t> bytes, std::string name = "<memory>");

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  const std::string& path() const;
  uint32_t version() const;
  uint64_t file_size() const;
  // Says the process no longer needs [begin, begin + n_bytes) of a mapped file in memory (a
  // tensor repacked elsewhere): those pages leave its resident set, and are read back from
  // the file, unchanged, if touched again. Does nothing to a heap copy.
  void release_pages(const uint8_t* begin, uint64_t n_bytes) const;
  uint64_t alignment() const;
  // Where the tensor data section starts; for a file without tensors that ends before the
  // padding (llama.cpp's vocab-only files do), the file size.
  uint64_t data_offset() const;

  // ---- metadata ----
  const std::vector<GgufKeyValue>& metadata() const;  // in file order
  const GgufValue* find(std::string_view key) const;  // nullptr when absent
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed getters throw "<file>: missing key K" or
  // "<file>: key K is a string, expected uint32". Integer getters accept any integer
  // type whose value fits the requested type.
  uint32_t get_u32(std::string_view key) const;
  int32_t get_i32(std::string_view key) const;
  uint64_t get_u64(std::string_view key) const;
  float get_f32(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  const GgufArray& get_array(std::string_view key) const;

  // The same, returning nullopt / nullptr when the key is absent (a wrong type still throws).
  std::optional<uint32_t> get_u32_opt(std::string_view key) const;
  std::optional<int32_t> get_i32_opt(std::string_view key) const;
  std::optional<float> get_f32_opt(std::string_view key) const;
  std::optional<bool> get_bool_opt(std::string_view key) const;
  const std::string* get_string_opt(std::string_view key) const;
  const GgufArray* get_array_opt(std::string_view key) const;

  // ---- tensors ----
  const std::vector<GgufTensor>& tensors() const;  // in file order
  const GgufTensor* find_tensor(std::string_view name) const;

 private:
  struct Impl;
  explicit GgufFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slm
