// The tile cache file (lib/model/tile_cache.hpp): a second load maps the tiles the first one
// wrote and gives the same logits, bit for bit; a cache that is corrupt, cut short, stale or
// not a cache at all is never used (the load repacks, gets the same logits, and writes it again).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "lib/model/tile_cache.hpp"
#include "lib/model/weights.hpp"
#include "slm/model.hpp"
#include "slm/session.hpp"
#include "support/assets.hpp"

namespace slm::test {
namespace {

namespace fs = std::filesystem;

class TileCache : public ::testing::Test {
 public:
  // Every position's logits of a fixed prompt.
  static std::vector<float> logits_of(const Model& model, std::shared_ptr<const Model> owner) {
    std::vector<TokenId> tokens;
    for (int i = 0; i < 24; ++i) tokens.push_back(TokenId((i * 37 + 11) % model.config().n_vocab));
    Session session(std::move(owner), {.n_ctx = 64, .n_threads = 2});
    const std::span<const float> logits = session.eval(tokens, true);
    return {logits.begin(), logits.end()};
  }

 protected:
  void SetUp() override {
    const fs::path source = shared_path("models/syn-llama-tiny-Q4_K_M.gguf");
    if (!fs::exists(source)) GTEST_SKIP() << "missing " << source;
    dir_ = fs::temp_directory_path() / ("slm-tile-cache-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "cache");
    model_ = dir_ / "model.gguf";
    fs::copy_file(source, model_);
    ::setenv("SLM_TILE_CACHE_DIR", (dir_ / "cache").c_str(), 1);
    ::unsetenv("SLM_TILE_CACHE");
  }
  void TearDown() override {
    ::unsetenv("SLM_TILE_CACHE_DIR");
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  fs::path cache_file() const {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir_ / "cache")) files.push_back(entry.path());
    EXPECT_EQ(files.size(), 1u) << "one cache file, no leftovers";
    return files.empty() ? fs::path() : files[0];
  }

  struct Loaded {
    bool from_cache;
    std::vector<float> logits;
  };
  Loaded load() const {
    const auto model = Model::load(model_.string());
    return {model->weights().tiles_from_cache, logits_of(*model, model)};
  }

  fs::path dir_, model_;
};

TEST_F(TileCache, ASecondLoadMapsTheTilesTheFirstWroteAndGivesTheSameLogits) {
  ::setenv("SLM_TILE_CACHE", "off", 1);
  const Loaded uncached = load();
  EXPECT_FALSE(uncached.from_cache);
  EXPECT_TRUE(fs::is_empty(dir_ / "cache")) << "SLM_TILE_CACHE=off writes nothing";
  ::unsetenv("SLM_TILE_CACHE");

  const Loaded first = load();
  EXPECT_FALSE(first.from_cache);
  ASSERT_FALSE(cache_file().empty());
  const Loaded second = load();
  EXPECT_TRUE(second.from_cache);
  ASSERT_EQ(first.logits.size(), uncached.logits.size());
  EXPECT_EQ(std::memcmp(first.logits.data(), uncached.logits.data(), uncached.logits.size() * 4), 0);
  EXPECT_EQ(std::memcmp(second.logits.data(), uncached.logits.data(), uncached.logits.size() * 4), 0);
}

// The repacked tiles ask for 2 MiB pages (LoadOptions::huge_pages): where they start, and the
// same logits with 4 KiB pages (the option off, or SLM_HUGE_PAGES=off).
TEST_F(TileCache, RepackedTilesStartOn2MiBPagesUnlessTurnedOffWithTheSameLogits) {
  ::setenv("SLM_TILE_CACHE", "off", 1);
  const auto huge = Model::load(model_.string());
  const auto small = Model::load(model_.string(), {.huge_pages = false});
  ::setenv("SLM_HUGE_PAGES", "off", 1);
  const auto small_by_environment = Model::load(model_.string());
  ::unsetenv("SLM_HUGE_PAGES");
  ::unsetenv("SLM_TILE_CACHE");
  if (huge->weights().interleaved_tiles.size() == 0) GTEST_SKIP() << "this ISA repacks nothing";
  EXPECT_EQ(reinterpret_cast<uintptr_t>(huge->weights().interleaved_tiles.data()) % kHugePageBytes, 0u);
  // A 4 KiB-page region starts wherever mmap put it; only its contents are checked.
  const std::vector<float> expected = logits_of(*huge, huge);
  EXPECT_EQ(logits_of(*small, small), expected);
  EXPECT_EQ(logits_of(*small_by_environment, small_by_environment), expected);
  ASSERT_EQ(small->weights().interleaved_tiles.size(), huge->weights().interleaved_tiles.size());
  EXPECT_EQ(std::memcmp(small->weights().interleaved_tiles.data(), huge->weights().interleaved_tiles.data(),
                        huge->weights().interleaved_tiles.size()),
            0);
}

// A warm load with 2 MiB pages copies the verified tiles into them where the kernel maps the
// cache 4 KiB at a time (always so for a cache under 2 MiB, as this one); without, it maps them.
TEST_F(TileCache, AWarmLoadCopiesTheCacheInto2MiBPagesWhereTheFileIsMapped4KiBAtATime) {
  const Loaded written = load();
  ASSERT_FALSE(written.from_cache);
  ASSERT_LT(fs::file_size(cache_file()), kHugePageBytes) << "a small cache: the kernel cannot map it 2 MiB at a time";
  const auto copied = Model::load(model_.string());
  const auto mapped = Model::load(model_.string(), {.huge_pages = false});
  ASSERT_TRUE(copied->weights().tiles_from_cache);
  ASSERT_TRUE(mapped->weights().tiles_from_cache);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(copied->weights().interleaved_tiles.data()) % kHugePageBytes, 0u);
  EXPECT_EQ(copied->weights().interleaved_tiles.size() + kTileCacheHeaderBytes, mapped->weights().interleaved_tiles.size())
      << "the tiles alone, against the whole file mapped";
  EXPECT_EQ(logits_of(*copied, copied), written.logits);
  EXPECT_EQ(logits_of(*mapped, mapped), written.logits);
}

// Matrices without tiles (F16, BF16, F32) are copied out of the file into 2 MiB pages, a tied
// token embedding with its output matrix, and give the mapped file's logits bit for bit.
TEST(RowCopies, FloatMatricesAreCopiedInto2MiBPagesWithTheSameLogits) {
  int n_checked = 0;
  for (const char* name : {"syn-llama-tiny-F16", "syn-llama-tiny-BF16", "syn-gemma2-tiny-F32"}) {
    const fs::path path = shared_path(std::string("models/") + name + ".gguf");
    if (!fs::exists(path)) continue;
    const auto copied = Model::load(path.string());
    const auto mapped = Model::load(path.string(), {.huge_pages = false});
    const ModelWeights& w = copied->weights();
    if (w.output.interleaved) continue;  // an ISA that tiles this format: nothing to copy
    ++n_checked;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(w.row_copies.data()) % kHugePageBytes, 0u) << name;
    EXPECT_EQ(mapped->weights().row_copies.size(), 0u) << name;
    const auto inside = [&](const uint8_t* p) { return p >= w.row_copies.data() && p < w.row_copies.data() + w.row_copies.size(); };
    EXPECT_TRUE(inside(w.output.data)) << name;
    EXPECT_TRUE(inside(w.layers[0].ffn_down.data)) << name;
    EXPECT_EQ(w.token_embd.data == w.output.data, mapped->weights().token_embd.data == mapped->weights().output.data)
        << name << ": a tied embedding stays tied";
    EXPECT_EQ(TileCache::logits_of(*copied, copied), TileCache::logits_of(*mapped, mapped)) << name;
  }
  if (n_checked == 0) GTEST_SKIP() << "no F16/BF16/F32 test model without tiles here";
}

// The smaps reader that decides whether a warm load copies the cache: a mapping's own fields.
TEST(TileCacheSmaps, ReadsTheFieldsOfTheMappingThatStartsAtAnAddress) {
  const fs::path file = fs::temp_directory_path() / ("slm-smaps-" + std::to_string(::getpid()));
  const size_t n_bytes = size_t(3) << 20;
  {
    std::ofstream out(file, std::ios::binary);
    const std::vector<char> bytes(n_bytes, 'x');
    out.write(bytes.data(), std::streamsize(bytes.size()));
  }
  const int fd = ::open(file.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* mapping = ::mmap(nullptr, n_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  fs::remove(file);
  ASSERT_NE(mapping, MAP_FAILED);
  EXPECT_EQ(smaps_bytes(mapping, "Size"), n_bytes);
  EXPECT_EQ(smaps_bytes(mapping, "Rss"), 0u) << "nothing read yet";
  uint64_t sum = 0;
  for (size_t i = 0; i < (size_t(1) << 20); i += 4096) sum += static_cast<const volatile char*>(mapping)[i];
  EXPECT_EQ(sum, uint64_t('x') * 256);
  const uint64_t resident = smaps_bytes(mapping, "Rss");
  EXPECT_GE(resident, uint64_t(1) << 20) << "the first MiB, read";
  EXPECT_LE(resident, n_bytes);
  EXPECT_LE(smaps_bytes(mapping, "FilePmdMapped"), resident);
  EXPECT_EQ(smaps_bytes(mapping, "NoSuchField"), 0u);
  EXPECT_EQ(smaps_bytes(static_cast<const char*>(mapping) + 4096, "Size"), 0u) << "no mapping starts there";
  ::munmap(mapping, n_bytes);
}

// A cache is written only where it takes at most half of the free space and leaves 1 GiB.
TEST(TileCacheRoom, ACacheNeverFillsTheDisk) {
  constexpr uint64_t GiB = uint64_t(1) << 30;
  EXPECT_TRUE(tile_cache_leaves_room(1 * GiB, 100 * GiB));
  EXPECT_TRUE(tile_cache_leaves_room(17 * GiB, 34 * GiB));       // a full Qwen3-30B-A3B's: half the space
  EXPECT_FALSE(tile_cache_leaves_room(17 * GiB, 34 * GiB - 1));
  EXPECT_FALSE(tile_cache_leaves_room(17 * GiB, 10 * GiB));      // larger than the free space
  EXPECT_TRUE(tile_cache_leaves_room(4096, GiB + 4096));         // small ones leave 1 GiB
  EXPECT_FALSE(tile_cache_leaves_room(4096, GiB + 4095));
  EXPECT_FALSE(tile_cache_leaves_room(1, 0));
}

// A load that repacks reports each step from 0 to its total, in order (LoadOptions::on_progress);
// one that maps the cache reports nothing.
TEST_F(TileCache, ARepackingLoadReportsItsProgressAndACachedOneDoesNot) {
  std::vector<LoadProgress> events;
  LoadOptions options;
  options.on_progress = [&](const LoadProgress& p) { events.push_back(p); };
  const auto first = Model::load(model_.string(), options);
  if (first->weights().interleaved_tiles.size() == 0) GTEST_SKIP() << "this ISA repacks nothing";
  ASSERT_FALSE(events.empty());
  std::vector<std::string> steps;
  for (size_t i = 0; i < events.size(); ++i) {
    const LoadProgress& p = events[i];
    EXPECT_EQ(p.total_bytes, first->weights().interleaved_tiles.size());
    EXPECT_LE(p.done_bytes, p.total_bytes);
    if (steps.empty() || steps.back() != p.step) {
      steps.push_back(p.step);
      EXPECT_EQ(p.done_bytes, 0u) << p.step << " starts at 0";
    } else {
      EXPECT_GT(p.done_bytes, events[i - 1].done_bytes) << p.step << " goes forward, each report once";
    }
    const bool last_of_step = i + 1 == events.size() || std::string(events[i + 1].step) != p.step;
    if (last_of_step) EXPECT_EQ(p.done_bytes, p.total_bytes) << p.step << " ends at its total";
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"repacking", "writing cache"}));
  events.clear();
  const auto second = Model::load(model_.string(), options);
  EXPECT_TRUE(second->weights().tiles_from_cache);
  EXPECT_TRUE(events.empty()) << events.size() << " reports from a load that mapped the cache";
}

// Each way of spoiling the cache file: it is not used, the logits are the file's, and the load
// writes a good cache again, which the next load uses.
TEST_F(TileCache, ACorruptCutShortStaleOrForeignCacheIsNeverUsedAndIsRebuilt) {
  const Loaded reference = load();  // writes the cache
  const auto flip_byte = [](const fs::path& cache, uint64_t at) {
    std::fstream f(cache, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(std::streamoff(at));
    const char byte = char(f.get() ^ 0x10);
    f.seekp(std::streamoff(at));
    f.put(byte);
  };
  struct Spoiler {
    const char* what;
    std::function<void(const fs::path& cache, const fs::path& model)> spoil;
  };
  const std::vector<Spoiler> spoilers = {
      {"one bit of the last tile byte", [&](const fs::path& cache, const fs::path&) { flip_byte(cache, fs::file_size(cache) - 1); }},
      {"one bit of the first tile byte", [&](const fs::path& cache, const fs::path&) { flip_byte(cache, kTileCacheHeaderBytes); }},
      {"one bit of the header", [&](const fs::path& cache, const fs::path&) { flip_byte(cache, 40); }},
      {"cut short", [](const fs::path& cache, const fs::path&) { fs::resize_file(cache, fs::file_size(cache) - 64); }},
      {"longer", [](const fs::path& cache, const fs::path&) { fs::resize_file(cache, fs::file_size(cache) + 4096); }},
      {"empty", [](const fs::path& cache, const fs::path&) { fs::resize_file(cache, 0); }},
      {"not a file", [](const fs::path& cache, const fs::path&) { fs::remove(cache); fs::create_directory(cache); }},
      {"the model touched (a new mtime)",
       [](const fs::path&, const fs::path& model) {
         fs::last_write_time(model, fs::last_write_time(model) + std::chrono::seconds(5));
       }},
  };
  for (const Spoiler& spoiler : spoilers) {
    SCOPED_TRACE(spoiler.what);
    const fs::path cache = cache_file();
    ASSERT_FALSE(cache.empty());
    spoiler.spoil(cache, model_);
    const Loaded spoiled = load();
    EXPECT_FALSE(spoiled.from_cache);
    ASSERT_EQ(spoiled.logits.size(), reference.logits.size());
    EXPECT_EQ(std::memcmp(spoiled.logits.data(), reference.logits.data(), reference.logits.size() * 4), 0);
    if (fs::is_directory(cache)) fs::remove(cache);  // a directory in the way is left alone
    else EXPECT_TRUE(load().from_cache) << "rebuilt";
    if (fs::is_empty(dir_ / "cache")) load();
  }
}

TEST_F(TileCache, AnUnwritableCacheDirectoryStillLoads) {
  ::setenv("SLM_TILE_CACHE_DIR", "/proc/slm-no-such-directory", 1);
  const Loaded loaded = load();
  EXPECT_FALSE(loaded.from_cache);
  EXPECT_FALSE(loaded.logits.empty());
}

}  // namespace
}  // namespace slm::test
