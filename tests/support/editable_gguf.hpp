// A GGUF file as plain editable values, for tests that load a real model after changing one
// thing in it: read one, change keys or tensors, write it back with GgufWriter.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "slm/gguf.hpp"

namespace slm::test {

struct EditableTensor {
  std::string name;
  GgmlType type;
  std::vector<uint64_t> shape;
  std::vector<uint8_t> data;
};

struct EditableModel {
  std::vector<GgufKeyValue> metadata;
  std::vector<EditableTensor> tensors;

  GgufValue* value(const std::string& key) {
    for (auto& kv : metadata)
      if (kv.key == key) return &kv.value;
    return nullptr;
  }
  void set_u32(const std::string& key, uint32_t v) {
    if (GgufValue* existing = value(key)) *existing = GgufValue{GgufValueType::UINT32, int64_t(v)};
    else metadata.push_back({key, GgufValue{GgufValueType::UINT32, int64_t(v)}, 0});
  }
  void remove_key(const std::string& key) {
    std::erase_if(metadata, [&](const GgufKeyValue& kv) { return kv.key == key; });
  }
  EditableTensor& tensor(const std::string& name) {
    for (auto& t : tensors)
      if (t.name == name) return t;
    throw std::runtime_error("no tensor " + name);
  }
  void remove_tensor(const std::string& name) {
    std::erase_if(tensors, [&](const EditableTensor& t) { return t.name == name; });
  }
  // Writes the metadata and tensors, in their order, with GgufWriter.
  void write(const std::filesystem::path& path) const;
};

EditableModel read_editable(const std::filesystem::path& path);

// Model::load's error message for the model at `source` after `edit`, written to `out`; "" when
// the edited model loads.
std::string load_error_after_edit(const std::filesystem::path& source, const std::function<void(EditableModel&)>& edit,
                                  const std::filesystem::path& out);

// EXPECTs that `text` contains `part`, showing both when it does not.
void expect_contains(const std::string& text, const std::string& part);

}  // namespace slm::test
