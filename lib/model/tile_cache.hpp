// The repacked tiles of a model kept in a file for the next load (issue 14's "repacked cache
// file"): repacking Llama-3.2-1B Q4_K_M writes 808 MB of fresh memory, most of the time to its
// first token, while the cache's pages are already in the page cache on a warm start.
//
// Nothing in a cache file is trusted. Its 4 KiB header must equal, byte for byte, the header
// this load computes: the model file's size, mtime, ctime, inode and a hash of its GGUF header;
// the placement of every tile (type, shape, offset in the model, offset in the cache); a hash of
// the repacking of a fixed block of each type (so a change of the layout invalidates old caches
// by itself); and the size of the tiles. Then the tiles must hash to the header's hash, computed
// over every byte. Anything else (absent, stale, cut short, corrupt, hostile) and the load
// repacks as usual and writes the cache again. Offsets and sizes come from the model alone.
//
// Where: $SLM_TILE_CACHE_DIR, else $XDG_CACHE_HOME/slm or ~/.cache/slm for models whose tiles
// take at least 64 MiB (smaller ones repack in a few milliseconds); SLM_TILE_CACHE=off turns it
// off. One file per model path, replaced atomically (written aside, then renamed).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "lib/ops/page_region.hpp"
#include "lib/ops/ops.hpp"
#include "slm/gguf.hpp"

namespace slm {

// A matrix to repack and where its tiles go in the region of all of them.
struct TilePlacement {
  ops::WeightMatrix* matrix;
  uint64_t offset;
};

// The bytes before the tiles in a cache file (a page, so that the tiles are page-aligned).
inline constexpr uint64_t kTileCacheHeaderBytes = 4096;

struct CachedTiles {
  // The whole cache file, mapped read-only (tiles = its data + kTileCacheHeaderBytes), or a copy
  // of the tiles alone in 2 MiB pages (tiles = its data); empty when the cache is not usable.
  PageRegion mapping;
  const uint8_t* tiles = nullptr;
};

// The tiles of `placed` (total_bytes in all) from the model's cache file, when it holds exactly
// them; else an empty CachedTiles. PageSize::Huge: where the kernel maps the file 4 KiB at a time,
// the tiles are copied into 2 MiB pages once verified.
CachedTiles read_tile_cache(const GgufFile& file, std::span<const TilePlacement> placed, uint64_t total_bytes,
                            int n_threads, PageSize pages);

// Of the mapping that starts at `mapping`, a size field of /proc/self/smaps in bytes ("Rss",
// "FilePmdMapped": the bytes the kernel maps 2 MiB at a time); 0 where it does not say.
uint64_t smaps_bytes(const void* mapping, std::string_view field);

// Whether a cache file of `bytes` may go where `available` bytes are free: it takes at most half
// of them and leaves at least 1 GiB, so that a large model's cache (a mixture's is as large as
// its file) never fills the user's disk.
bool tile_cache_leaves_room(uint64_t bytes, uint64_t available);

// Writes `tiles` (total_bytes) as the model's cache file, where caching is on and its filesystem
// has room (tile_cache_leaves_room); any failure (no space, no permission) leaves no file and no
// error: the next load repacks again.
// on_written(bytes of tiles written so far) follows the write.
void write_tile_cache(const GgufFile& file, std::span<const TilePlacement> placed, const uint8_t* tiles,
                      uint64_t total_bytes, int n_threads, const std::function<void(uint64_t)>& on_written = {});

}  // namespace slm
