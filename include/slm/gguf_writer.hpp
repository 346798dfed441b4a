// GGUF v3 writer (little-endian). It writes only valid files: every value is checked
// against its declared type, keys and tensor names are unique, each tensor's data has
// exactly the size its type and shape call for, and tensor data is padded to the
// alignment. The alignment is the uint32 key general.alignment if one was added, else 32,
// the same rule readers apply. Malformed files for tests are made at the byte level
// (tests/support/gguf_bytes.hpp), not here.
//
// Layout written: header, metadata in the order added, tensor infos in the order added,
// padding, then each tensor's data followed by padding to the alignment.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "slm/gguf.hpp"

namespace slm {

class GgufWriter {
 public:
  // Any metadata value, e.g. one copied from GgufFile::metadata(). Throws slm::Error on a
  // duplicate key, a value whose held alternative does not match `value.type`, an integer
  // outside its type's range, an array of arrays, or an unusable general.alignment.
  void add(std::string key, GgufValue value);

  // Shorthands for the common types.
  void add_u32(std::string key, uint32_t value);
  void add_i32(std::string key, int32_t value);
  void add_u64(std::string key, uint64_t value);  // up to 2^63-1, like the reader
  void add_f32(std::string key, float value);
  void add_bool(std::string key, bool value);
  void add_string(std::string key, std::string value);
  void add_array(std::string key, GgufArray value);

  // A tensor of 1 to 4 dimensions, shape[0] being the row length. `data` must hold
  // exactly ggml_row_bytes(type, shape[0]) × rows bytes. Throws slm::Error otherwise,
  // on a duplicate name, or on a type that is not a weight format.
  void add_tensor(std::string name, GgmlType type, std::vector<uint64_t> shape, std::vector<uint8_t> data);

  // The whole file image.
  std::vector<uint8_t> to_bytes() const;
  // Writes the file; throws slm::Error naming the path when it cannot.
  void write_file(const std::string& path) const;

 private:
  struct PendingTensor {
    GgufTensor info;  // offset is assigned when writing (the alignment may still change); data stays null
    std::vector<uint8_t> data;
  };

  uint64_t alignment() const;
  // Header, metadata, tensor infos and the padding up to the data section.
  std::vector<uint8_t> encode_head() const;

  std::vector<GgufKeyValue> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace slm
