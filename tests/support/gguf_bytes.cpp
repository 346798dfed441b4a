#include "support/gguf_bytes.hpp"

#include <unistd.h>

#include <bit>
#include <fstream>

#include "support/assets.hpp"

namespace slm::test {

GgufBytes& GgufBytes::little_endian(uint64_t value, unsigned n_bytes) {
  for (unsigned i = 0; i < n_bytes; ++i) bytes_.push_back(static_cast<uint8_t>(value >> (8 * i)));
  return *this;
}

GgufBytes& GgufBytes::raw(std::string_view bytes) {
  bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
  return *this;
}
GgufBytes& GgufBytes::u8(uint8_t value) { return little_endian(value, 1); }
GgufBytes& GgufBytes::u16(uint16_t value) { return little_endian(value, 2); }
GgufBytes& GgufBytes::u32(uint32_t value) { return little_endian(value, 4); }
GgufBytes& GgufBytes::u64(uint64_t value) { return little_endian(value, 8); }
GgufBytes& GgufBytes::f32(float value) { return u32(std::bit_cast<uint32_t>(value)); }
GgufBytes& GgufBytes::f64(double value) { return u64(std::bit_cast<uint64_t>(value)); }
GgufBytes& GgufBytes::zeros(size_t count) {
  bytes_.insert(bytes_.end(), count, 0);
  return *this;
}
GgufBytes& GgufBytes::str(std::string_view text) { return u64(text.size()).raw(text); }

GgufBytes& GgufBytes::header(uint64_t tensor_count, uint64_t kv_count, uint32_t version) {
  return raw("GGUF").u32(version).u64(tensor_count).u64(kv_count);
}

GgufBytes& GgufBytes::key(std::string_view key, GgufValueType type) {
  return str(key).u32(static_cast<uint32_t>(type));
}

GgufBytes& GgufBytes::kv_u32(std::string_view key, uint32_t value) {
  return this->key(key, GgufValueType::UINT32).u32(value);
}

GgufBytes& GgufBytes::kv_string(std::string_view key, std::string_view value) {
  return this->key(key, GgufValueType::STRING).str(value);
}

GgufBytes& GgufBytes::array_header(std::string_view key, GgufValueType element_type, uint64_t count) {
  return this->key(key, GgufValueType::ARRAY).u32(static_cast<uint32_t>(element_type)).u64(count);
}

GgufBytes& GgufBytes::tensor_info(std::string_view name, const std::vector<uint64_t>& ne, uint32_t type,
                                  uint64_t offset) {
  str(name).u32(static_cast<uint32_t>(ne.size()));
  for (uint64_t dim : ne) u64(dim);
  return u32(type).u64(offset);
}

GgufBytes& GgufBytes::pad_to(uint64_t alignment) {
  while (bytes_.size() % alignment != 0) bytes_.push_back(0);
  return *this;
}

GgufBytes file_with_tensors(const std::vector<TensorInfoSpec>& tensors, uint64_t data_bytes) {
  GgufBytes file;
  file.header(tensors.size(), 1).kv_string("general.architecture", "test");
  for (const TensorInfoSpec& tensor : tensors) file.tensor_info(tensor.name, tensor.ne, tensor.type, tensor.offset);
  return file.pad_to(32).zeros(data_bytes);
}

::testing::AssertionResult load_fails_with(const GgufBytes& file, std::string_view expected) {
  try {
    GgufFile::from_bytes(file.bytes(), "crafted.gguf");
  } catch (const Error& error) {
    const std::string message = error.what();
    if (message.find(expected) != std::string::npos) return ::testing::AssertionSuccess() << message;
    return ::testing::AssertionFailure() << "error \"" << message << "\" does not contain \"" << expected << "\"";
  }
  return ::testing::AssertionFailure() << "the file loaded, expected an error containing \"" << expected << "\"";
}

std::filesystem::path scratch_dir() {
  struct ScratchDir {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("slm_gguf_tests_" + std::to_string(::getpid()));
    ScratchDir() { std::filesystem::create_directories(path); }
    ~ScratchDir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const ScratchDir dir;
  return dir.path;
}

std::filesystem::path write_scratch_file(const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::filesystem::path path = scratch_dir() / name;
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!file) throw std::runtime_error("cannot write " + path.string());
  return path;
}

std::filesystem::path quantize_tiny_llama(FileType file_type, const std::string& name) {
  const std::filesystem::path path = scratch_dir() / name;
  QuantizeOptions options;
  options.file_type = file_type;
  quantize_model(shared_path("models/syn-llama-tiny-F32.gguf").string(), path.string(), options);
  return path;
}

}  // namespace slm::test
