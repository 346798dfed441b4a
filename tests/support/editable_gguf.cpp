#include "support/editable_gguf.hpp"

#include <gtest/gtest.h>

#include "slm/gguf_writer.hpp"
#include "slm/model.hpp"

namespace slm::test {

void EditableModel::write(const std::filesystem::path& path) const {
  GgufWriter writer;
  for (auto& kv : metadata) writer.add(kv.key, kv.value);
  for (auto& t : tensors) writer.add_tensor(t.name, t.type, t.shape, t.data);
  writer.write_file(path.string());
}

EditableModel read_editable(const std::filesystem::path& path) {
  const GgufFile file = GgufFile::open(path.string());
  EditableModel m;
  m.metadata = file.metadata();
  for (const GgufTensor& t : file.tensors())
    m.tensors.push_back({t.name, t.type, std::vector<uint64_t>(t.ne.begin(), t.ne.begin() + t.n_dims),
                         std::vector<uint8_t>(t.data, t.data + t.n_bytes)});
  return m;
}

std::string load_error_after_edit(const std::filesystem::path& source, const std::function<void(EditableModel&)>& edit,
                                  const std::filesystem::path& out) {
  EditableModel m = read_editable(source);
  edit(m);
  m.write(out);
  try {
    Model::load(out.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "'" << text << "' does not contain '" << part << "'";
}

}  // namespace slm::test
