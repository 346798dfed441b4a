// GGUF loader: tensor infos, the alignment and the data section.
// Every malformed file is crafted here byte by byte (support/gguf_bytes.hpp).
#include <cstdint>
#include <functional>
#include <limits>

#include "slm/gguf.hpp"
#include "support/gguf_bytes.hpp"

namespace slm {
namespace {

using test::file_with_tensors;
using test::GgufBytes;
using test::load_fails_with;
using test::TensorInfoSpec;

constexpr uint32_t kF32 = 0;
constexpr uint32_t kQ4_0 = 2;
constexpr uint32_t kQ8_1 = 9;
constexpr uint32_t kQ4_K = 12;
constexpr uint32_t kQ8_K = 15;
constexpr uint32_t kIQ4_NL = 20;
constexpr uint32_t kIQ4_XS = 23;
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

GgufFile load(const GgufBytes& file) { return GgufFile::from_bytes(file.bytes(), "crafted.gguf"); }

TEST(GgufTensors, ValidTensorsPointIntoTheDataSection) {
  // Q4_K [256, 2]: 2 rows of one 144-byte block; F32 [3]: 12 bytes, starting at the next multiple of 32.
  const GgufBytes file = file_with_tensors({{"blk.0.ffn_up.weight", {256, 2}, kQ4_K, 0}, {"norm", {3}, kF32, 288}}, 300);
  const GgufFile gguf = load(file);
  ASSERT_EQ(gguf.tensors().size(), 2u);
  EXPECT_EQ(gguf.alignment(), 32u);
  EXPECT_EQ(gguf.data_offset() % 32, 0u);
  const GgufTensor& up = gguf.tensors()[0];
  EXPECT_EQ(up.type, GgmlType::Q4_K);
  EXPECT_EQ(up.n_dims, 2u);
  EXPECT_EQ(up.shape_string(), "[256, 2]");
  EXPECT_EQ(up.n_elements(), 512u);
  EXPECT_EQ(up.n_rows(), 2u);
  EXPECT_EQ(up.n_bytes, 288u);
  const GgufTensor* norm = gguf.find_tensor("norm");
  ASSERT_NE(norm, nullptr);
  EXPECT_EQ(norm->n_bytes, 12u);
  EXPECT_EQ(norm->data - up.data, 288);
  EXPECT_EQ(gguf.find_tensor("absent"), nullptr);
}

TEST(GgufTensors, TensorCountBeyondTheFileBytesIsRejected) {
  const GgufBytes file = GgufBytes().header(1000, 0).zeros(64);
  EXPECT_TRUE(load_fails_with(file, "tensor count at offset 8: 1000 tensor infos need at least 32 bytes each"));
}

TEST(GgufTensors, TensorNameOverTheCapIsRejected) {
  const std::string long_name(GgufLimits::max_tensor_name_bytes + 1, 'x');
  EXPECT_TRUE(load_fails_with(file_with_tensors({{long_name, {4}, kF32, 0}}, 32),
                              "tensor #0 name at offset 68: string length 257 exceeds the limit of 256 bytes"));
}

TEST(GgufTensors, DuplicateTensorNameIsRejected) {
  const GgufBytes file = file_with_tensors({{"w", {8}, kF32, 0}, {"w", {8}, kF32, 32}}, 64);
  EXPECT_TRUE(load_fails_with(file, "tensor 'w' at offset 101: duplicate tensor name, first defined at offset 68"));
}

TEST(GgufTensors, ZeroDimensionsAreRejected) {
  EXPECT_TRUE(load_fails_with(file_with_tensors({{"w", {}, kF32, 0}}, 32),
                              "tensor 'w' at offset 77: n_dims is 0, expected 1 to 4"));
}

TEST(GgufTensors, FiveDimensionsAreRejected) {
  EXPECT_TRUE(load_fails_with(file_with_tensors({{"w", {1, 1, 1, 1, 1}, kF32, 0}}, 32), "n_dims is 5, expected 1 to 4"));
}

TEST(GgufTensors, DimensionOfZeroIsRejected) {
  EXPECT_TRUE(load_fails_with(file_with_tensors({{"w", {4, 0}, kF32, 0}}, 32),
                              "tensor 'w' at offset 89: ne[1] is 0, expected at least 1"));
}

TEST(GgufTensors, ElementCountThatOverflowsIsRejected) {
  EXPECT_TRUE(load_fails_with(file_with_tensors({{"w", {1ull << 32, 1ull << 32, 2}, kF32, 0}}, 32),
                              "tensor 'w' at offset 68: shape [4294967296, 4294967296, 2] has more than 2^64 elements"));
}

TEST(GgufTensors, ByteSizeThatOverflowsIsRejected) {
  // 2^62 elements fit in 64 bits, but 4 bytes each do not.
  EXPECT_TRUE(load_fails_with(file_with_tensors({{"w", {1ull << 62}, kF32, 0}}, 32),
                              "byte size of F32 [4611686018427387904] overflows 64 bits"));
}

TEST(GgufTensors, UnknownTensorTypeIsRejected) {
  EXPECT_TRUE(load_fails_with(file_with_tensors({{"w", {32}, 99, 0}}, 128),
                              "tensor 'w' at offset 89: unknown tensor type id 99"));
  // Id 4 was Q4_2, removed from ggml long ago.
  EXPECT_TRUE(load_fails_with(file_with_tensors({{"w", {32}, 4, 0}}, 128), "unknown tensor type id 4"));
}

TEST(GgufTensors, NonWeightTypesAreRejected) {
  EXPECT_TRUE(load_fails_with(file_with_tensors({{"w", {256}, kQ8_K, 0}}, 320),
                              "tensor 'w' at offset 89: type Q8_K (id 15) is not a weight format"));
  EXPECT_TRUE(load_fails_with(file_with_tensors({{"w", {32}, kQ8_1, 0}}, 64), "type Q8_1 (id 9) is not a weight format"));
}

TEST(GgufTensors, RowLengthNotAMultipleOfTheBlockSizeIsRejected) {
  EXPECT_TRUE(load_fails_with(file_with_tensors({{"w", {33, 2}, kQ4_0, 0}}, 64),
                              "tensor 'w' at offset 68: row length ne[0] = 33 is not a multiple of the Q4_0 block "
                              "size 32"));
}

TEST(GgufTensors, Iq4TensorsGetTheirBlockSizesAndByteCounts) {
  // IQ4_NL [64, 2]: 4 blocks of 18 bytes; IQ4_XS [256, 2]: 2 blocks of 136, at the next multiple of 32.
  const GgufFile gguf = load(file_with_tensors({{"nl", {64, 2}, kIQ4_NL, 0}, {"xs", {256, 2}, kIQ4_XS, 96}}, 400));
  EXPECT_EQ(gguf.find_tensor("nl")->type, GgmlType::IQ4_NL);
  EXPECT_EQ(gguf.find_tensor("nl")->n_bytes, 72u);
  EXPECT_EQ(gguf.find_tensor("xs")->type, GgmlType::IQ4_XS);
  EXPECT_EQ(gguf.find_tensor("xs")->n_bytes, 272u);
}

TEST(GgufTensors, Iq4RowLengthNotAMultipleOfTheBlockSizeIsRejected) {
  // llama-quantize writes IQ4_NL where a row is not a multiple of 256: a file claiming IQ4_XS there is hostile.
  EXPECT_TRUE(load_fails_with(file_with_tensors({{"w", {288, 2}, kIQ4_XS, 0}}, 640),
                              "tensor 'w' at offset 68: row length ne[0] = 288 is not a multiple of the IQ4_XS block "
                              "size 256"));
  EXPECT_TRUE(load_fails_with(file_with_tensors({{"w", {48}, kIQ4_NL, 0}}, 64),
                              "row length ne[0] = 48 is not a multiple of the IQ4_NL block size 32"));
}

TEST(GgufTensors, TruncatedIq4TensorIsRejected) {
  // IQ4_XS [256, 2] is 272 bytes; the file holds 200 of them.
  EXPECT_TRUE(load_fails_with(file_with_tensors({{"w", {256, 2}, kIQ4_XS, 0}}, 200),
                              "tensor 'w' at offset 68: data [128, 400) extends past the end of the file (size 328)"));
}

TEST(GgufTensors, TensorDataPastTheEndOfTheFileIsRejected) {
  // Header, key and one 1-D tensor info end at 119, so the data section starts at 128.
  const GgufBytes file = file_with_tensors({{"blk.0.attn_q.weight", {8}, kF32, 64}}, 64);
  EXPECT_TRUE(load_fails_with(file, "crafted.gguf: tensor 'blk.0.attn_q.weight' at offset 68: data [192, 224) "
                                    "extends past the end of the file (size 192)"));
}

TEST(GgufTensors, MisalignedTensorOffsetIsRejected) {
  EXPECT_TRUE(load_fails_with(file_with_tensors({{"w", {8}, kF32, 16}}, 64),
                              "tensor 'w' at offset 93: data offset 16 is not a multiple of the alignment 32"));
}

TEST(GgufTensors, OverlappingTensorsAreRejected) {
  const GgufBytes file = file_with_tensors({{"a", {32}, kF32, 0}, {"b", {8}, kF32, 96}}, 160);
  EXPECT_TRUE(load_fails_with(file, "tensor 'b' at offset 101: data [256, 288) overlaps tensor 'a' at [160, 288)"));
}

TEST(GgufTensors, OverlapIsFoundWhateverTheInfoOrder) {
  const GgufBytes file = file_with_tensors({{"b", {8}, kF32, 96}, {"a", {32}, kF32, 0}}, 160);
  EXPECT_TRUE(load_fails_with(file, "tensor 'b' at offset 68: data [256, 288) overlaps tensor 'a'"));
}

TEST(GgufTensors, SizeWrappingAround2Pow64IsRejected) {
  const GgufBytes file = file_with_tensors({{"w", {32}, kF32, kU64Max - 31}}, 128);
  EXPECT_TRUE(load_fails_with(file, "tensor 'w' at offset 68: data at 128 + 18446744073709551584 with 128 bytes wraps "
                                    "around 2^64"));
}

TEST(GgufTensors, DataSectionPastTheEndOfTheFileIsRejected) {
  // The tensor infos end at 101 and the file ends there, before the padding to 128.
  GgufBytes file;
  file.header(1, 1).kv_string("general.architecture", "test").tensor_info("w", {8}, kF32, 0);
  EXPECT_TRUE(load_fails_with(file, "data section at offset 101: starts at 128 (tensor infos end at 101, aligned to "
                                    "32), past the end of the file (size 101)"));
}

TEST(GgufTensors, FileWithoutTensorsMayEndBeforeThePadding) {
  // llama.cpp's vocab-only files end right after the metadata.
  const GgufFile gguf = load(GgufBytes().header(0, 1).kv_string("general.architecture", "test"));
  EXPECT_TRUE(gguf.tensors().empty());
  EXPECT_EQ(gguf.data_offset(), gguf.file_size());
}

// ---------------------------------------------------------------------------
// general.alignment
// ---------------------------------------------------------------------------

// One F32 [8] tensor at data offset 0, with `alignment_key` written as the second key.
GgufBytes file_with_alignment(const std::function<void(GgufBytes&)>& alignment_key, uint64_t pad_to = 32) {
  GgufBytes file;
  file.header(1, 2).kv_string("general.architecture", "test");
  alignment_key(file);
  return file.tensor_info("w", {8}, kF32, 0).pad_to(pad_to).zeros(32);
}

TEST(GgufAlignment, ValidAlignmentPlacesTheDataSection) {
  const GgufFile gguf = load(file_with_alignment([](GgufBytes& f) { f.kv_u32("general.alignment", 64); }, 64));
  EXPECT_EQ(gguf.alignment(), 64u);
  EXPECT_EQ(gguf.data_offset(), 192u);
  EXPECT_EQ(gguf.get_u32("general.alignment"), 64u);
}

TEST(GgufAlignment, AlignmentNotAPowerOfTwoIsRejected) {
  EXPECT_TRUE(load_fails_with(file_with_alignment([](GgufBytes& f) { f.kv_u32("general.alignment", 48); }),
                              "crafted.gguf: key general.alignment at offset 68: alignment 48 is not a power of two"));
}

TEST(GgufAlignment, ZeroAlignmentIsRejected) {
  EXPECT_TRUE(load_fails_with(file_with_alignment([](GgufBytes& f) { f.kv_u32("general.alignment", 0); }),
                              "alignment 0 is not a power of two"));
}

TEST(GgufAlignment, AlignmentOverTheCapIsRejected) {
  EXPECT_TRUE(load_fails_with(file_with_alignment([](GgufBytes& f) { f.kv_u32("general.alignment", 1u << 17); }),
                              "alignment 131072 exceeds the limit of 65536"));
}

TEST(GgufAlignment, AlignmentOfTheWrongTypeIsRejected) {
  EXPECT_TRUE(load_fails_with(
      file_with_alignment([](GgufBytes& f) { f.key("general.alignment", GgufValueType::UINT64).u64(32); }),
      "key general.alignment at offset 68 is a uint64, expected uint32"));
  EXPECT_TRUE(load_fails_with(file_with_alignment([](GgufBytes& f) { f.kv_string("general.alignment", "32"); }),
                              "is a string, expected uint32"));
}

}  // namespace
}  // namespace slm
