// The tile cache file: see tile_cache.hpp.
#include "lib/model/tile_cache.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/interleaved_blocks.hpp"
#include "lib/ops/thread_pool.hpp"

namespace slm {
namespace {

constexpr char kMagic[8] = {'S', 'L', 'M', 'T', 'I', 'L', 'E', 'S'};
constexpr uint64_t kMinDefaultCacheBytes = uint64_t{64} << 20;
constexpr uint64_t kHashChunkBytes = uint64_t{1} << 20;

// A 64-bit hash of n bytes: four lanes of (lane ^ word) * odd constant, then a xorshift, each
// step a bijection of the lane for a given word, so a change of any one word always changes
// the result. Not cryptographic: whoever can write the cache can write the model too.
uint64_t hash_bytes(const uint8_t* bytes, uint64_t n, uint64_t seed) {
  constexpr uint64_t kOdd = 0x9E3779B97F4A7C15ull;
  uint64_t lane[4] = {seed, seed ^ 0x632BE59BD9B4E019ull, seed + kOdd, ~seed};
  uint64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 4; ++j) {
      uint64_t word;
      std::memcpy(&word, bytes + i + 8 * j, sizeof(word));
      lane[j] = (lane[j] ^ word) * kOdd;
      lane[j] ^= lane[j] >> 29;
    }
  uint64_t tail[4] = {n, 0, 0, 0};
  std::memcpy(reinterpret_cast<uint8_t*>(tail) + 8, bytes + i, size_t(n - i));
  uint64_t h = seed;
  for (int j = 0; j < 4; ++j) h = ((h ^ lane[j] ^ tail[j]) * kOdd) ^ (h >> 31);
  return h;
}

// The hash of every 1 MiB chunk, in order, hashed: the same whatever the thread count.
uint64_t hash_tiles(const uint8_t* tiles, uint64_t n, int n_threads) {
  const auto n_chunks = int64_t((n + kHashChunkBytes - 1) / kHashChunkBytes);
  std::vector<uint64_t> chunk_hashes(static_cast<size_t>(n_chunks));
  ops::parallel_for(n_chunks, ops::chunk_for(n_chunks, n_threads, 4), n_threads, [&](int64_t begin, int64_t end, int) {
    for (int64_t c = begin; c < end; ++c) {
      const uint64_t first = uint64_t(c) * kHashChunkBytes;
      chunk_hashes[size_t(c)] = hash_bytes(tiles + first, std::min(kHashChunkBytes, n - first), uint64_t(c));
    }
  });
  return hash_bytes(reinterpret_cast<const uint8_t*>(chunk_hashes.data()), chunk_hashes.size() * sizeof(uint64_t), n);
}

// The header a cache of these tiles must have, but for the tiles' hash; nullopt when the model
// cannot be cached (not a readable regular file).
std::optional<std::vector<uint8_t>> expected_header(const GgufFile& file, std::span<const TilePlacement> placed,
                                                    uint64_t total_bytes) {
  struct stat st {};
  if (::stat(file.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode) || uint64_t(st.st_size) != file.file_size() ||
      file.tensors().empty())
    return std::nullopt;
  std::vector<uint8_t> gguf_header(size_t(file.data_offset()));
  const int fd = ::open(file.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  const ssize_t n_read = ::pread(fd, gguf_header.data(), gguf_header.size(), 0);
  ::close(fd);
  if (n_read != ssize_t(gguf_header.size())) return std::nullopt;

  std::vector<uint64_t> fields = {uint64_t(st.st_size), uint64_t(st.st_mtim.tv_sec), uint64_t(st.st_mtim.tv_nsec),
                                  uint64_t(st.st_ctim.tv_sec), uint64_t(st.st_ctim.tv_nsec), uint64_t(st.st_ino),
                                  uint64_t(st.st_dev), hash_bytes(gguf_header.data(), gguf_header.size(), 1),
                                  total_bytes, placed.size()};
  const GgufTensor& first = file.tensors().front();
  const uint8_t* data_section = first.data - first.offset;
  std::vector<uint8_t> probe_rows, probe_tile;
  for (const TilePlacement& p : placed) {
    const ops::WeightMatrix& w = *p.matrix;
    fields.insert(fields.end(), {uint64_t(w.type), uint64_t(w.n_in), uint64_t(w.n_out), w.row_bytes,
                                 uint64_t(w.data - data_section), p.offset});
    // The repacking of 8 rows of fixed bytes, 256 weights each: a new layout, a new hash.
    const uint64_t row_bytes = ggml_row_bytes(w.type, 256);
    probe_rows.resize(size_t(row_bytes * kernels::kInterleavedRows));
    for (size_t i = 0; i < probe_rows.size(); ++i) probe_rows[i] = uint8_t(i * 131 + 7);
    probe_tile.assign(size_t(kernels::interleaved_tile_bytes(w.type, 256)), 0);
    kernels::interleave_rows(w.type, probe_rows.data(), row_bytes, 256, probe_tile.data());
    fields.push_back(hash_bytes(probe_tile.data(), probe_tile.size(), 2));
  }
  std::vector<uint8_t> header(kTileCacheHeaderBytes, 0);
  std::memcpy(header.data(), kMagic, sizeof(kMagic));
  // Header bytes 8..15: the tiles' hash. 16..23: the hash of the fields, then as many fields as fit.
  const uint64_t fields_hash = hash_bytes(reinterpret_cast<const uint8_t*>(fields.data()), fields.size() * 8, 3);
  std::memcpy(header.data() + 16, &fields_hash, sizeof(fields_hash));
  std::memcpy(header.data() + 24, fields.data(), std::min<size_t>(fields.size() * 8, header.size() - 24));
  return header;
}

// The cache file of a model, or nullopt where caching is off.
std::optional<std::filesystem::path> cache_path(const GgufFile& file, uint64_t total_bytes) {
  if (const char* mode = std::getenv("SLM_TILE_CACHE"); mode && (std::strcmp(mode, "off") == 0 || std::strcmp(mode, "0") == 0))
    return std::nullopt;
  std::filesystem::path dir;
  if (const char* explicit_dir = std::getenv("SLM_TILE_CACHE_DIR"); explicit_dir && *explicit_dir) {
    dir = explicit_dir;
  } else {
    if (total_bytes < kMinDefaultCacheBytes) return std::nullopt;
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) dir = std::filesystem::path(xdg) / "slm";
    else if (const char* home = std::getenv("HOME"); home && *home) dir = std::filesystem::path(home) / ".cache" / "slm";
    else return std::nullopt;
  }
  std::error_code error;
  const std::filesystem::path model = std::filesystem::absolute(file.path(), error);
  if (error) return std::nullopt;
  const std::string name = model.filename().string();
  const uint64_t path_hash = hash_bytes(reinterpret_cast<const uint8_t*>(model.c_str()), model.native().size(), 4);
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), ".%016llx.tiles", static_cast<unsigned long long>(path_hash));
  return dir / (name + suffix);
}

// The verified tiles of a mapped cache copied into 2 MiB pages; the mapping itself when there is
// no memory for them. Each copied chunk's file pages are unmapped at once (MADV_DONTNEED: they
// stay in the page cache), so that the process never holds the tiles twice.
CachedTiles copied_into_huge_pages(CachedTiles mapped, uint64_t total_bytes, int n_threads) {
  PageRegion copy;
  try {
    copy = PageRegion(size_t(total_bytes), PageSize::Huge);
  } catch (const std::bad_alloc&) {
    return mapped;
  }
  // Page-aligned: the tiles start a page into the file and chunks are whole pages.
  ops::copy_in_chunks(copy.data(), mapped.tiles, total_bytes, n_threads, [](const uint8_t* chunk, uint64_t n) {
    ::madvise(const_cast<uint8_t*>(chunk), n, MADV_DONTNEED);
  });
  const uint8_t* tiles = copy.data();
  return {std::move(copy), tiles};
}

bool write_all(int fd, const uint8_t* bytes, uint64_t n) {
  while (n > 0) {
    const ssize_t written = ::write(fd, bytes, size_t(std::min<uint64_t>(n, uint64_t{1} << 30)));
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return false;
    bytes += written;
    n -= uint64_t(written);
  }
  return true;
}

}  // namespace

uint64_t smaps_bytes(const void* mapping, std::string_view field) {
  char header[32];
  std::snprintf(header, sizeof(header), "%08lx-", static_cast<unsigned long>(reinterpret_cast<uintptr_t>(mapping)));
  std::ifstream smaps("/proc/self/smaps");
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    // A mapping's first line starts with its address in lowercase hex; its fields' names are capitalized.
    const bool first_line = !line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
                            !std::isupper(static_cast<unsigned char>(line[0]));
    if (first_line && inside) break;
    if (first_line) inside = line.rfind(header, 0) == 0;
    else if (inside && line.size() > field.size() && line.compare(0, field.size(), field) == 0 && line[field.size()] == ':')
      return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10) * 1024;
  }
  return 0;
}

bool tile_cache_leaves_room(uint64_t bytes, uint64_t available) {
  return bytes <= available && available - bytes >= std::max<uint64_t>(uint64_t(1) << 30, bytes);
}

CachedTiles read_tile_cache(const GgufFile& file, std::span<const TilePlacement> placed, uint64_t total_bytes,
                            int n_threads, PageSize pages) {
  const std::optional<std::filesystem::path> path = cache_path(file, total_bytes);
  if (!path || total_bytes == 0) return {};
  const int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  struct stat st {};
  std::vector<uint8_t> header(kTileCacheHeaderBytes);
  const bool sized = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                     uint64_t(st.st_size) == kTileCacheHeaderBytes + total_bytes &&
                     ::pread(fd, header.data(), header.size(), 0) == ssize_t(header.size());
  std::optional<std::vector<uint8_t>> expected = sized ? expected_header(file, placed, total_bytes) : std::nullopt;
  // All but the tiles' hash (bytes 8..15) must match.
  if (!expected || std::memcmp(header.data(), expected->data(), 8) != 0 ||
      std::memcmp(header.data() + 16, expected->data() + 16, header.size() - 16) != 0) {
    ::close(fd);
    return {};
  }
  void* mapping = ::mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping == MAP_FAILED) return {};
  CachedTiles cached{PageRegion(mapping, size_t(st.st_size)), static_cast<const uint8_t*>(mapping) + kTileCacheHeaderBytes};
  uint64_t tiles_hash;
  std::memcpy(&tiles_hash, header.data() + 8, sizeof(tiles_hash));
  if (hash_tiles(cached.tiles, total_bytes, n_threads) != tiles_hash) return {};
  // The hash touched every page, so the kernel has mapped them: 2 MiB at a time where it keeps
  // the file in large folios (Linux 6.18 on ext4), else 4 KiB at a time, and then a copy in
  // 2 MiB pages streams faster (README, "Huge pages for the weights").
  if (pages == PageSize::Huge && 2 * smaps_bytes(mapping, "FilePmdMapped") < total_bytes &&
      copy_fits(total_bytes, available_memory_bytes()))
    return copied_into_huge_pages(std::move(cached), total_bytes, n_threads);
  return cached;
}

void write_tile_cache(const GgufFile& file, std::span<const TilePlacement> placed, const uint8_t* tiles,
                      uint64_t total_bytes, int n_threads, const std::function<void(uint64_t)>& on_written) {
  const std::optional<std::filesystem::path> path = cache_path(file, total_bytes);
  if (!path || total_bytes == 0) return;
  std::optional<std::vector<uint8_t>> header = expected_header(file, placed, total_bytes);
  if (!header) return;
  const uint64_t tiles_hash = hash_tiles(tiles, total_bytes, n_threads);
  std::memcpy(header->data() + 8, &tiles_hash, sizeof(tiles_hash));
  std::error_code error;
  std::filesystem::create_directories(path->parent_path(), error);
  if (error) return;
  struct statvfs disk {};
  if (::statvfs(path->parent_path().c_str(), &disk) != 0 ||
      !tile_cache_leaves_room(kTileCacheHeaderBytes + total_bytes, uint64_t(disk.f_bavail) * disk.f_frsize))
    return;
  const std::filesystem::path aside = path->string() + ".part" + std::to_string(::getpid());
  const int fd = ::open(aside.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (on_written) on_written(0);
  bool written = write_all(fd, header->data(), header->size());
  constexpr uint64_t kChunk = uint64_t(64) << 20;  // a progress report per 64 MiB written
  for (uint64_t done = 0; written && done < total_bytes; done += kChunk) {
    written = write_all(fd, tiles + done, std::min(kChunk, total_bytes - done));
    if (on_written) on_written(std::min(total_bytes, done + kChunk));
  }
  if (::close(fd) == 0 && written && ::rename(aside.c_str(), path->c_str()) == 0) return;
  ::unlink(aside.c_str());
}

}  // namespace slm
