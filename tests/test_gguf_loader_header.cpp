// GGUF loader: the header, metadata values, typed getters and opening files from disk.
// Every malformed file is crafted here byte by byte (support/gguf_bytes.hpp).
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "slm/gguf.hpp"
#include "support/gguf_bytes.hpp"

namespace slm {
namespace {

using test::GgufBytes;
using test::load_fails_with;

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

// A valid file with one key and no tensors, the base most tests break in one place.
GgufBytes one_key_file(uint32_t version = 3) {
  return GgufBytes().header(0, 1, version).kv_string("general.architecture", "llama");
}

GgufFile load(const GgufBytes& file) { return GgufFile::from_bytes(file.bytes(), "crafted.gguf"); }

// ---------------------------------------------------------------------------
// Header
// ---------------------------------------------------------------------------

TEST(GgufHeader, EmptyImageIsRejected) { EXPECT_TRUE(load_fails_with(GgufBytes(), "crafted.gguf: empty file")); }

TEST(GgufHeader, TruncatedHeaderNamesTheFieldAndOffset) {
  const GgufBytes file = GgufBytes().raw("GGUF").u32(3).u16(0);
  EXPECT_TRUE(load_fails_with(file, "crafted.gguf: tensor count at offset 8: needs 8 bytes, but the file ends at 10"));
}

TEST(GgufHeader, EveryPrefixOfTheHeaderIsTruncated) {
  const std::vector<uint8_t> full = one_key_file().bytes();
  for (size_t length = 1; length < 24; ++length) {
    GgufBytes prefix;
    prefix.raw(std::string_view(reinterpret_cast<const char*>(full.data()), length));
    EXPECT_TRUE(load_fails_with(prefix, "(truncated)")) << "prefix length " << length;
  }
}

TEST(GgufHeader, BadMagicIsRejected) {
  const GgufBytes file = GgufBytes().raw("GGML").u32(3).u64(0).u64(0);
  EXPECT_TRUE(load_fails_with(file, "crafted.gguf: magic at offset 0: found bytes 47 47 4d 4c, expected \"GGUF\""));
}

TEST(GgufHeader, BigEndianFileIsRejected) {
  // A big-endian v3 file: the version 3 stored as 00 00 00 03 reads as 0x03000000.
  const GgufBytes file = GgufBytes().raw("GGUF").u32(0x03000000).u64(0).u64(0);
  EXPECT_TRUE(load_fails_with(file, "big-endian GGUF is not supported"));
}

TEST(GgufHeader, Version1IsRejected) {
  EXPECT_TRUE(load_fails_with(GgufBytes().raw("GGUF").u32(1).u32(0).u32(0), "GGUF v1 is not supported"));
}

TEST(GgufHeader, UnknownVersionIsRejected) {
  EXPECT_TRUE(load_fails_with(one_key_file(4), "unsupported GGUF version 4, expected 2 or 3"));
  EXPECT_TRUE(load_fails_with(one_key_file(0), "unsupported GGUF version 0, expected 2 or 3"));
}

TEST(GgufHeader, Version2AndVersion3Load) {
  EXPECT_EQ(load(one_key_file(2)).version(), 2u);
  EXPECT_EQ(load(one_key_file(3)).version(), 3u);
}

TEST(GgufHeader, KeyValueCountNear2Pow64IsRejected) {
  EXPECT_TRUE(load_fails_with(GgufBytes().header(0, kU64Max - 1),
                              "key/value count at offset 16: 18446744073709551614 exceeds the limit of 65536"));
}

TEST(GgufHeader, KeyValueCountBeyondTheFileBytesIsRejected) {
  EXPECT_TRUE(load_fails_with(GgufBytes().header(0, 1000).kv_u32("a", 1),
                              "1000 key/value pairs need at least 13 bytes each, but only 17 bytes remain"));
}

TEST(GgufHeader, TensorCountOverTheLimitIsRejected) {
  EXPECT_TRUE(load_fails_with(GgufBytes().header(kU64Max, 0), "tensor count at offset 8: 18446744073709551615 "
                                                              "exceeds the limit of 1048576"));
}

// ---------------------------------------------------------------------------
// Keys and values
// ---------------------------------------------------------------------------

TEST(GgufMetadata, KeyLengthNear2Pow64IsRejected) {
  const GgufBytes file = GgufBytes().header(0, 1).u64(kU64Max).raw("abcdefgh");
  EXPECT_TRUE(load_fails_with(file, "key #0 at offset 24: string length 18446744073709551615 exceeds the limit of "
                                    "1024 bytes"));
}

TEST(GgufMetadata, StringLengthNear2Pow64IsRejected) {
  const GgufBytes file = GgufBytes().header(0, 1).key("general.name", GgufValueType::STRING).u64(kU64Max - 7);
  EXPECT_TRUE(load_fails_with(file, "key general.name at offset 48: string length 18446744073709551608 exceeds the "
                                    "limit of 16777216 bytes"));
}

TEST(GgufMetadata, StringLengthJustOverTheCapIsRejected) {
  const GgufBytes file =
      GgufBytes().header(0, 1).key("general.name", GgufValueType::STRING).u64(GgufLimits::max_string_bytes + 1);
  EXPECT_TRUE(load_fails_with(file, "string length 16777217 exceeds the limit of 16777216 bytes"));
}

TEST(GgufMetadata, StringPastTheEndOfTheFileIsRejected) {
  const GgufBytes file = GgufBytes().header(0, 1).key("general.name", GgufValueType::STRING).u64(100).raw("short");
  EXPECT_TRUE(load_fails_with(file, "string of 100 bytes extends past the end of the file (size 61)"));
}

TEST(GgufMetadata, HugeArrayCountIsRejectedBeforeAllocating) {
  // Counts are checked against the cap and the bytes left before any vector is sized.
  GgufBytes over_cap = GgufBytes().header(0, 1).array_header("tokens", GgufValueType::UINT32, 1ull << 62);
  EXPECT_TRUE(load_fails_with(over_cap, "array of 4611686018427387904 elements exceeds the limit of 16777216"));

  GgufBytes within_cap = GgufBytes().header(0, 1).array_header("tokens", GgufValueType::UINT32, 1ull << 24);
  within_cap.u32(7);
  EXPECT_TRUE(load_fails_with(within_cap, "16777216 uint32 elements need at least 4 bytes each, but only 4 bytes "
                                          "remain"));

  GgufBytes strings = GgufBytes().header(0, 1).array_header("tokens", GgufValueType::STRING, 1'000'000);
  strings.str("a").str("b");
  EXPECT_TRUE(load_fails_with(strings, "1000000 string elements need at least 8 bytes each, but only 18 bytes "
                                       "remain"));
}

TEST(GgufMetadata, ArrayOfArraysIsRejected) {
  const GgufBytes file = GgufBytes().header(0, 1).array_header("nested", GgufValueType::ARRAY, 1).u32(4).u64(0);
  EXPECT_TRUE(load_fails_with(file, "key nested at offset 42: arrays of arrays are not supported"));
}

TEST(GgufMetadata, UnknownValueTypeIsRejected) {
  const GgufBytes file = GgufBytes().header(0, 1).str("general.thing").u32(13).u32(0);
  EXPECT_TRUE(load_fails_with(file, "key general.thing at offset 45: unknown value type 13, expected 0 to 12"));
}

TEST(GgufMetadata, UnknownArrayElementTypeIsRejected) {
  const GgufBytes file = GgufBytes().header(0, 1).key("list", GgufValueType::ARRAY).u32(99).u64(0);
  EXPECT_TRUE(load_fails_with(file, "key list at offset 40: unknown value type 99"));
}

TEST(GgufMetadata, DuplicateKeyIsRejected) {
  const GgufBytes file = GgufBytes().header(0, 2).kv_u32("llama.block_count", 5).kv_u32("llama.block_count", 6);
  EXPECT_TRUE(load_fails_with(file, "key llama.block_count at offset 57: duplicate key, first defined at offset 24"));
}

TEST(GgufMetadata, BoolOtherThanZeroOrOneIsRejected) {
  const GgufBytes file = GgufBytes().header(0, 1).key("flag", GgufValueType::BOOL).u8(2);
  EXPECT_TRUE(load_fails_with(file, "key flag at offset 40: bool byte is 2, expected 0 or 1"));
}

TEST(GgufMetadata, Uint64AboveInt64MaxIsRejected) {
  const GgufBytes file = GgufBytes().header(0, 1).key("big", GgufValueType::UINT64).u64(1ull << 63);
  EXPECT_TRUE(load_fails_with(file, "uint64 value 9223372036854775808 is above 2^63-1"));
}

TEST(GgufMetadata, ControlBytesInKeysAreEscapedInErrors) {
  const GgufBytes file = GgufBytes().header(0, 2).kv_u32("a\nb", 1).kv_u32("a\nb", 2);
  EXPECT_TRUE(load_fails_with(file, "key a\\x0ab at offset"));
}

TEST(GgufMetadata, ValuesOfEveryScalarTypeAreReadInFileOrder) {
  GgufBytes file = GgufBytes().header(0, 6);
  file.key("u8", GgufValueType::UINT8).u8(200);
  file.key("i8", GgufValueType::INT8).u8(0x80);
  file.key("i16", GgufValueType::INT16).u16(0xFFFE);
  file.key("f64", GgufValueType::FLOAT64).f64(0.25);
  file.key("b", GgufValueType::BOOL).u8(1);
  file.array_header("ids", GgufValueType::INT32, 2).u32(7).u32(0xFFFFFFFF);
  const GgufFile gguf = load(file);
  ASSERT_EQ(gguf.metadata().size(), 6u);
  EXPECT_EQ(gguf.metadata()[0].key, "u8");
  EXPECT_EQ(gguf.metadata()[0].file_offset, 24u);
  EXPECT_EQ(std::get<int64_t>(gguf.find("u8")->value), 200);
  EXPECT_EQ(std::get<int64_t>(gguf.find("i8")->value), -128);
  EXPECT_EQ(std::get<int64_t>(gguf.find("i16")->value), -2);
  EXPECT_EQ(std::get<double>(gguf.find("f64")->value), 0.25);
  EXPECT_TRUE(gguf.get_bool("b"));
  EXPECT_EQ(gguf.get_array("ids").ints, (std::vector<int64_t>{7, -1}));
  EXPECT_EQ(gguf.get_array("ids").size(), 2u);
}

// ---------------------------------------------------------------------------
// Typed getters
// ---------------------------------------------------------------------------

GgufFile getter_file() {
  GgufBytes file = GgufBytes().header(0, 8);
  file.kv_string("llama.block_count", "five");
  file.key("n_u64", GgufValueType::UINT64).u64(5);
  file.key("n_big", GgufValueType::UINT64).u64(1ull << 40);
  file.key("n_neg", GgufValueType::INT32).u32(static_cast<uint32_t>(-3));
  file.key("flag", GgufValueType::BOOL).u8(1);
  file.key("eps", GgufValueType::FLOAT64).f64(1e-6);
  file.key("theta", GgufValueType::FLOAT32).f32(10000.0f);
  file.array_header("tokens", GgufValueType::STRING, 1).str("a");
  return load(file);
}

TEST(GgufGetters, MissingKeyNamesTheFileAndKey) {
  const GgufFile gguf = getter_file();
  try {
    gguf.get_u32("llama.context_length");
    FAIL() << "expected slm::Error";
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(), "crafted.gguf: missing key llama.context_length");
  }
}

TEST(GgufGetters, WrongTypeMessageNamesBothTypes) {
  const GgufFile gguf = getter_file();
  try {
    gguf.get_u32("llama.block_count");
    FAIL() << "expected slm::Error";
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(), "crafted.gguf: key llama.block_count is a string, expected uint32");
  }
}

TEST(GgufGetters, IntegerGettersAcceptAnyIntegerTypeThatFits) {
  const GgufFile gguf = getter_file();
  EXPECT_EQ(gguf.get_u32("n_u64"), 5u);
  EXPECT_EQ(gguf.get_i32("n_u64"), 5);
  EXPECT_EQ(gguf.get_u64("n_big"), 1ull << 40);
  EXPECT_EQ(gguf.get_i32("n_neg"), -3);
  EXPECT_EQ(gguf.get_u32_opt("n_u64"), 5u);
}

TEST(GgufGetters, IntegerThatDoesNotFitIsRejected) {
  const GgufFile gguf = getter_file();
  EXPECT_THROW(gguf.get_u32("n_big"), Error);
  EXPECT_THROW(gguf.get_i32("n_big"), Error);
  EXPECT_THROW(gguf.get_u32("n_neg"), Error);
  EXPECT_THROW(gguf.get_u64("n_neg"), Error);
  try {
    gguf.get_u32("n_neg");
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(), "crafted.gguf: key n_neg is an int32 with value -3, which does not fit uint32");
  }
}

TEST(GgufGetters, BoolIsNotAnInteger) {
  const GgufFile gguf = getter_file();
  try {
    gguf.get_u32("flag");
    FAIL() << "expected slm::Error";
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(), "crafted.gguf: key flag is a bool, expected uint32");
  }
}

TEST(GgufGetters, FloatGetterAcceptsFloat32AndFloat64Only) {
  const GgufFile gguf = getter_file();
  EXPECT_FLOAT_EQ(gguf.get_f32("eps"), 1e-6f);
  EXPECT_FLOAT_EQ(gguf.get_f32("theta"), 10000.0f);
  try {
    gguf.get_f32("n_u64");
    FAIL() << "expected slm::Error";
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(), "crafted.gguf: key n_u64 is a uint64, expected float32");
  }
}

TEST(GgufGetters, ArraysAreDescribedWithTheirElementType) {
  const GgufFile gguf = getter_file();
  try {
    gguf.get_string("tokens");
    FAIL() << "expected slm::Error";
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(), "crafted.gguf: key tokens is an array of string, expected string");
  }
  EXPECT_EQ(gguf.get_array("tokens").strings, std::vector<std::string>{"a"});
}

TEST(GgufGetters, OptionalGettersReturnNothingWhenAbsentAndStillCheckTheType) {
  const GgufFile gguf = getter_file();
  EXPECT_FALSE(gguf.get_u32_opt("absent").has_value());
  EXPECT_FALSE(gguf.get_i32_opt("absent").has_value());
  EXPECT_FALSE(gguf.get_f32_opt("absent").has_value());
  EXPECT_FALSE(gguf.get_bool_opt("absent").has_value());
  EXPECT_EQ(gguf.get_string_opt("absent"), nullptr);
  EXPECT_EQ(gguf.get_array_opt("absent"), nullptr);
  EXPECT_FALSE(gguf.has("absent"));
  EXPECT_THROW(gguf.get_u32_opt("llama.block_count"), Error);
  EXPECT_THROW(gguf.get_string_opt("flag"), Error);
  EXPECT_EQ(*gguf.get_string_opt("llama.block_count"), "five");
  EXPECT_EQ(gguf.get_bool_opt("flag"), true);
}

// ---------------------------------------------------------------------------
// Opening files from disk
// ---------------------------------------------------------------------------

using test::scratch_dir;
using test::write_scratch_file;

TEST(GgufOpen, MappedFileLoads) {
  const auto path = write_scratch_file("ok.gguf", one_key_file().bytes());
  const GgufFile gguf = GgufFile::open(path.string());
  EXPECT_EQ(gguf.path(), path.string());
  EXPECT_EQ(gguf.get_string("general.architecture"), "llama");
  EXPECT_EQ(gguf.file_size(), one_key_file().size());
}

TEST(GgufOpen, EmptyFileIsRejected) {
  const auto path = write_scratch_file("empty.gguf", {});
  EXPECT_THROW(
      {
        try {
          GgufFile::open(path.string());
        } catch (const Error& error) {
          EXPECT_EQ(std::string(error.what()), path.string() + ": empty file, expected a GGUF file");
          throw;
        }
      },
      Error);
}

TEST(GgufOpen, DirectoryIsRejected) {
  try {
    GgufFile::open(scratch_dir().string());
    FAIL() << "expected slm::Error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), scratch_dir().string() + ": is a directory, expected a GGUF file");
  }
}

TEST(GgufOpen, MissingFileIsRejected) {
  try {
    GgufFile::open((scratch_dir() / "absent.gguf").string());
    FAIL() << "expected slm::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("absent.gguf: cannot open: No such file"), std::string::npos)
        << error.what();
  }
}

TEST(GgufOpen, FileThatCannotBeMappedIsReadIntoMemory) {
  // A FIFO cannot be mapped, so the loader reads it instead.
  const auto fifo = scratch_dir() / "pipe.gguf";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::vector<uint8_t> bytes = one_key_file().bytes();
  std::thread writer([&] {
    std::ofstream(fifo, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  });
  const GgufFile gguf = GgufFile::open(fifo.string());
  writer.join();
  EXPECT_EQ(gguf.get_string("general.architecture"), "llama");
  EXPECT_EQ(gguf.file_size(), bytes.size());
}

TEST(GgufOpen, MovedFileKeepsItsData) {
  const auto path = write_scratch_file("ok.gguf", one_key_file().bytes());
  GgufFile first = GgufFile::open(path.string());
  GgufFile second = std::move(first);
  EXPECT_EQ(second.get_string("general.architecture"), "llama");
}

}  // namespace
}  // namespace slm
