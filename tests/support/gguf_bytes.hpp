// Byte-level GGUF builder for tests that need malformed files, which the validating
// GgufWriter refuses to produce. Every field is written little-endian exactly as given.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "slm/gguf.hpp"
#include "slm/quantize.hpp"  // FileType

namespace slm::test {

class GgufBytes {
 public:
  GgufBytes& raw(std::string_view bytes);
  GgufBytes& u8(uint8_t value);
  GgufBytes& u16(uint16_t value);
  GgufBytes& u32(uint32_t value);
  GgufBytes& u64(uint64_t value);
  GgufBytes& f32(float value);
  GgufBytes& f64(double value);
  GgufBytes& zeros(size_t count);
  // gguf_string: uint64 length, then the bytes.
  GgufBytes& str(std::string_view text);

  // "GGUF", version, tensor count, key/value count.
  GgufBytes& header(uint64_t tensor_count, uint64_t kv_count, uint32_t version = 3);
  // A key and its value type; the caller writes the value (for odd or broken values).
  GgufBytes& key(std::string_view key, GgufValueType type);
  GgufBytes& kv_u32(std::string_view key, uint32_t value);
  GgufBytes& kv_string(std::string_view key, std::string_view value);
  // Array header: key, ARRAY, element type, count; the caller writes the elements.
  GgufBytes& array_header(std::string_view key, GgufValueType element_type, uint64_t count);
  // name, n_dims = ne.size(), ne..., raw ggml type id, offset.
  GgufBytes& tensor_info(std::string_view name, const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset);
  // Zeros up to the next multiple of `alignment`.
  GgufBytes& pad_to(uint64_t alignment);

  size_t size() const { return bytes_.size(); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  GgufBytes& little_endian(uint64_t value, unsigned n_bytes);
  std::vector<uint8_t> bytes_;
};

// One tensor info for file_with_tensors(); `type` is the raw ggml type id.
struct TensorInfoSpec {
  std::string name;
  std::vector<uint64_t> ne;
  uint32_t type = 0;  // F32
  uint64_t offset = 0;
};

// A file with one key (general.architecture = "test"), the given tensor infos, padding
// to 32, then `data_bytes` zero bytes of tensor data.
GgufBytes file_with_tensors(const std::vector<TensorInfoSpec>& tensors, uint64_t data_bytes);

// Success when GgufFile::from_bytes throws slm::Error whose message contains `expected`;
// the failure message shows what happened instead.
::testing::AssertionResult load_fails_with(const GgufBytes& file, std::string_view expected);

// A directory for this test process under the system temp dir, removed at exit.
std::filesystem::path scratch_dir();
// Writes `bytes` to scratch_dir() / name and returns the path.
std::filesystem::path write_scratch_file(const std::string& name, const std::vector<uint8_t>& bytes);
// The shared syn-llama-tiny-F32 (the caller requires it: SLM_REQUIRE_ASSET) quantized to
// `file_type` by slm-quantize's code into scratch_dir() / name: the formats no shared file holds.
std::filesystem::path quantize_tiny_llama(FileType file_type, const std::string& name);

}  // namespace slm::test
