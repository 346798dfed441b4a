// libFuzzer target for the GGUF loader: any input must either load or throw slm::Error.
// ASan/UBSan (added by CMake) turn every out-of-bounds read or overflow into a crash.
// Seed a corpus with real files at run time, e.g.
//   mkdir corpus && cp ../shared/vocab/*.gguf ../shared/models/stories260K.gguf corpus/
//   ./build-fuzz/bin/fuzz_gguf -max_total_time=30 corpus
#include <cstddef>
#include <cstdint>
#include <vector>

#include "slm/gguf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const slm::GgufFile gguf = slm::GgufFile::from_bytes(std::vector<uint8_t>(data, data + size), "fuzz.gguf");
    // Touch what a model loader would: every tensor's first and last byte.
    volatile uint8_t sink = 0;
    for (const slm::GgufTensor& tensor : gguf.tensors()) sink = sink + tensor.data[0] + tensor.data[tensor.n_bytes - 1];
  } catch (const slm::Error&) {
  }
  return 0;
}
