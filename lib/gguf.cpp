// GgufFile: owns the file image (a read-only mapping, or a heap copy) and answers
// metadata and tensor queries. Parsing and validation live in gguf_parse.cpp.
#include "slm/gguf.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "gguf_parse.hpp"

namespace slm {

std::string_view gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::UINT8: return "uint8";
    case GgufValueType::INT8: return "int8";
    case GgufValueType::UINT16: return "uint16";
    case GgufValueType::INT16: return "int16";
    case GgufValueType::UINT32: return "uint32";
    case GgufValueType::INT32: return "int32";
    case GgufValueType::FLOAT32: return "float32";
    case GgufValueType::BOOL: return "bool";
    case GgufValueType::STRING: return "string";
    case GgufValueType::ARRAY: return "array";
    case GgufValueType::UINT64: return "uint64";
    case GgufValueType::INT64: return "int64";
    case GgufValueType::FLOAT64: return "float64";
  }
  return "unknown";
}

uint64_t GgufArray::size() const {
  switch (element_type) {
    case GgufValueType::STRING: return strings.size();
    case GgufValueType::FLOAT32:
    case GgufValueType::FLOAT64: return floats.size();
    default: return ints.size();
  }
}

std::string GgufTensor::shape_string() const {
  std::string shape = "[";
  for (uint32_t d = 0; d < n_dims && d < ne.size(); ++d) shape += fmt::format("{}{}", d ? ", " : "", ne[d]);
  return shape + "]";
}

namespace {

[[noreturn]] void throw_system_error(const std::string& path, std::string_view action) {
  throw Error(fmt::format("{}: cannot {}: {}", path, action, std::strerror(errno)));
}

struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

// The bytes of a GGUF file: a read-only private mapping when the file can be mapped,
// else a heap copy (pipes, file systems without mmap). Spans into it stay valid when
// the image is moved, because neither the mapping nor a vector's buffer moves.
class FileImage {
 public:
  explicit FileImage(std::vector<uint8_t> bytes) : owned_(std::move(bytes)) {}
  FileImage(FileImage&& other) noexcept
      : mapping_(std::exchange(other.mapping_, nullptr)),
        mapping_size_(std::exchange(other.mapping_size_, 0)),
        owned_(std::move(other.owned_)) {}
  FileImage& operator=(FileImage&&) = delete;
  ~FileImage() {
    if (mapping_) ::munmap(mapping_, mapping_size_);
  }

  static FileImage map_or_read(const std::string& path) {
    FileDescriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (file.fd < 0) throw_system_error(path, "open");
    struct stat status {};
    if (::fstat(file.fd, &status) != 0) throw_system_error(path, "stat");
    if (S_ISDIR(status.st_mode)) throw Error(fmt::format("{}: is a directory, expected a GGUF file", path));
    if (S_ISREG(status.st_mode)) {
      if (status.st_size == 0) throw Error(fmt::format("{}: empty file, expected a GGUF file", path));
      const auto size = static_cast<size_t>(status.st_size);
      void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, file.fd, 0);
      if (mapping != MAP_FAILED) {
        FileImage image({});
        image.mapping_ = mapping;
        image.mapping_size_ = size;
        return image;
      }
    }
    return FileImage(read_all(file.fd, path, S_ISREG(status.st_mode) ? static_cast<size_t>(status.st_size) : 0));
  }

  std::span<const uint8_t> bytes() const {
    if (mapping_) return {static_cast<const uint8_t*>(mapping_), mapping_size_};
    return owned_;
  }

  // Drops the mapped pages wholly inside [begin, begin + n) from the resident set; a private
  // read-only mapping reads them back from the file if they are touched again. A heap copy
  // keeps its bytes (MADV_DONTNEED would zero them).
  void release_pages(const uint8_t* begin, uint64_t n) const {
    if (!mapping_) return;
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t first = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(begin) + n) / page * page;
    const auto mapping_begin = reinterpret_cast<uintptr_t>(mapping_);
    if (first < end && first >= mapping_begin && end <= mapping_begin + mapping_size_)
      ::madvise(reinterpret_cast<void*>(first), end - first, MADV_DONTNEED);
  }

 private:
  static std::vector<uint8_t> read_all(int fd, const std::string& path, size_t size_hint) {
    constexpr size_t kChunkBytes = size_t{1} << 20;
    std::vector<uint8_t> bytes;
    bytes.reserve(size_hint);
    size_t filled = 0;
    for (;;) {
      bytes.resize(filled + kChunkBytes);
      const ssize_t n = ::read(fd, bytes.data() + filled, kChunkBytes);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_system_error(path, "read");
      if (n == 0) break;
      filled += static_cast<size_t>(n);
    }
    bytes.resize(filled);
    return bytes;
  }

  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  std::vector<uint8_t> owned_;
};

}  // namespace

struct GgufFile::Impl {
  Impl(std::string path_, FileImage image_, gguf_detail::TensorData tensor_data)
      : path(std::move(path_)), image(std::move(image_)) {
    parsed = gguf_detail::parse_gguf(image.bytes(), path, tensor_data);
    // Views into `parsed`, which never changes after this point.
    for (size_t i = 0; i < parsed.metadata.size(); ++i) key_index.emplace(parsed.metadata[i].key, i);
    for (size_t i = 0; i < parsed.tensors.size(); ++i) tensor_index.emplace(parsed.tensors[i].name, i);
  }

  const GgufValue& require(std::string_view key) const {
    const auto found = key_index.find(key);
    if (found == key_index.end())
      throw Error(fmt::format("{}: missing key {}", path, gguf_detail::printable_name(key)));
    return parsed.metadata[found->second].value;
  }

  const GgufValue* find(std::string_view key) const {
    const auto found = key_index.find(key);
    return found == key_index.end() ? nullptr : &parsed.metadata[found->second].value;
  }

  [[noreturn]] void wrong_type(std::string_view key, const GgufValue& value, std::string_view expected) const {
    throw Error(fmt::format("{}: key {} is {}, expected {}", path, gguf_detail::printable_name(key),
                            gguf_detail::describe_value_type(value), expected));
  }

  // Any integer type is accepted when its value fits the requested type; bool is not an integer.
  template <typename Int>
  Int integer(std::string_view key, const GgufValue& value, std::string_view expected) const {
    if (!gguf_detail::is_integer_value_type(value.type)) wrong_type(key, value, expected);
    const int64_t held = std::get<int64_t>(value.value);
    if (!std::in_range<Int>(held))
      throw Error(fmt::format("{}: key {} is {} with value {}, which does not fit {}", path,
                              gguf_detail::printable_name(key), gguf_detail::describe_value_type(value), held,
                              expected));
    return static_cast<Int>(held);
  }

  float float32(std::string_view key, const GgufValue& value) const {
    if (value.type != GgufValueType::FLOAT32 && value.type != GgufValueType::FLOAT64)
      wrong_type(key, value, "float32");
    return static_cast<float>(std::get<double>(value.value));
  }

  bool boolean(std::string_view key, const GgufValue& value) const {
    if (value.type != GgufValueType::BOOL) wrong_type(key, value, "bool");
    return std::get<bool>(value.value);
  }

  const std::string& string(std::string_view key, const GgufValue& value) const {
    if (value.type != GgufValueType::STRING) wrong_type(key, value, "string");
    return std::get<std::string>(value.value);
  }

  const GgufArray& array(std::string_view key, const GgufValue& value) const {
    if (value.type != GgufValueType::ARRAY) wrong_type(key, value, "array");
    return std::get<GgufArray>(value.value);
  }

  std::string path;
  FileImage image;
  gguf_detail::ParsedGguf parsed;
  std::unordered_map<std::string_view, size_t> key_index;
  std::unordered_map<std::string_view, size_t> tensor_index;
};

GgufFile::GgufFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

GgufFile GgufFile::open(const std::string& path) {
  return GgufFile(std::make_unique<Impl>(path, FileImage::map_or_read(path), gguf_detail::TensorData::Required));
}

GgufFile GgufFile::open_header(const std::string& path) {
  return GgufFile(std::make_unique<Impl>(path, FileImage::map_or_read(path), gguf_detail::TensorData::NotRead));
}

GgufFile GgufFile::from_bytes(std::vector<uint8_t> bytes, std::string name) {
  return GgufFile(
      std::make_unique<Impl>(std::move(name), FileImage(std::move(bytes)), gguf_detail::TensorData::Required));
}

GgufFile GgufFile::header_from_bytes(std::vector<uint8_t> bytes, std::string name) {
  return GgufFile(
      std::make_unique<Impl>(std::move(name), FileImage(std::move(bytes)), gguf_detail::TensorData::NotRead));
}

const std::string& GgufFile::path() const { return impl_->path; }
uint32_t GgufFile::version() const { return impl_->parsed.version; }
uint64_t GgufFile::file_size() const { return impl_->image.bytes().size(); }
void GgufFile::release_pages(const uint8_t* begin, uint64_t n_bytes) const { impl_->image.release_pages(begin, n_bytes); }
uint64_t GgufFile::alignment() const { return impl_->parsed.alignment; }
uint64_t GgufFile::data_offset() const { return impl_->parsed.data_offset; }

const std::vector<GgufKeyValue>& GgufFile::metadata() const { return impl_->parsed.metadata; }
const GgufValue* GgufFile::find(std::string_view key) const { return impl_->find(key); }

uint32_t GgufFile::get_u32(std::string_view key) const { return impl_->integer<uint32_t>(key, impl_->require(key), "uint32"); }
int32_t GgufFile::get_i32(std::string_view key) const { return impl_->integer<int32_t>(key, impl_->require(key), "int32"); }
uint64_t GgufFile::get_u64(std::string_view key) const { return impl_->integer<uint64_t>(key, impl_->require(key), "uint64"); }
float GgufFile::get_f32(std::string_view key) const { return impl_->float32(key, impl_->require(key)); }
bool GgufFile::get_bool(std::string_view key) const { return impl_->boolean(key, impl_->require(key)); }
const std::string& GgufFile::get_string(std::string_view key) const { return impl_->string(key, impl_->require(key)); }
const GgufArray& GgufFile::get_array(std::string_view key) const { return impl_->array(key, impl_->require(key)); }

std::optional<uint32_t> GgufFile::get_u32_opt(std::string_view key) const {
  const GgufValue* value = impl_->find(key);
  if (!value) return std::nullopt;
  return impl_->integer<uint32_t>(key, *value, "uint32");
}

std::optional<int32_t> GgufFile::get_i32_opt(std::string_view key) const {
  const GgufValue* value = impl_->find(key);
  if (!value) return std::nullopt;
  return impl_->integer<int32_t>(key, *value, "int32");
}

std::optional<float> GgufFile::get_f32_opt(std::string_view key) const {
  const GgufValue* value = impl_->find(key);
  if (!value) return std::nullopt;
  return impl_->float32(key, *value);
}

std::optional<bool> GgufFile::get_bool_opt(std::string_view key) const {
  const GgufValue* value = impl_->find(key);
  if (!value) return std::nullopt;
  return impl_->boolean(key, *value);
}

const std::string* GgufFile::get_string_opt(std::string_view key) const {
  const GgufValue* value = impl_->find(key);
  return value ? &impl_->string(key, *value) : nullptr;
}

const GgufArray* GgufFile::get_array_opt(std::string_view key) const {
  const GgufValue* value = impl_->find(key);
  return value ? &impl_->array(key, *value) : nullptr;
}

const std::vector<GgufTensor>& GgufFile::tensors() const { return impl_->parsed.tensors; }

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  const auto found = impl_->tensor_index.find(name);
  return found == impl_->tensor_index.end() ? nullptr : &impl_->parsed.tensors[found->second];
}

}  // namespace slm
