// Memory straight from the kernel (an anonymous mmap): zero pages that take no RAM until they
// are written, given back whole (munmap) when freed. Three users: the forward scratch, sized
// for the largest batch but mostly untouched by a short prompt (lib/model/scratch_rows.hpp), the
// weights' interleaved tiles, one region for all of them written once at load, and the KV pool.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <new>
#include <string>
#include <utility>

namespace slm {

// `bytes` (> 0) of zeros, or std::bad_alloc.
inline void* map_zero_pages(size_t bytes) {
  void* pages = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (pages == MAP_FAILED) throw std::bad_alloc();
  return pages;
}

inline void unmap_pages(void* pages, size_t bytes) noexcept { ::munmap(pages, bytes); }

inline constexpr size_t kHugePageBytes = size_t(2) << 20;

// MemAvailable of /proc/meminfo in bytes: what can be allocated without swapping (free memory
// and the page cache the kernel can drop); 0 where it cannot be read.
inline uint64_t available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);)
    if (line.rfind("MemAvailable:", 0) == 0) return std::strtoull(line.c_str() + 13, nullptr, 10) * 1024;
  return 0;
}

// Whether a copy of `bytes` into anonymous memory may be made where `available` bytes are
// available: at most half of them, so that a model too large to copy stays in the file's pages,
// which the kernel can evict, instead of pushing the machine out of memory.
inline bool copy_fits(uint64_t bytes, uint64_t available) { return bytes <= available / 2; }

enum class PageSize { Small, Huge };

// One mapped region, owned: zero pages, or a file's pages (the tile cache's).
// PageSize::Huge starts it on a 2 MiB boundary and asks for 2 MiB pages (MADV_HUGEPAGE; advice:
// 4 KiB pages where the kernel has none to give). A stream of reads through 4 KiB pages stops
// at every page (the TLB, and the hardware prefetcher, which does not cross one): on this
// project's Zen 4 VM one-token matmuls from memory ran 1.2-1.55x faster on 2 MiB pages
// (README, "Huge pages for the weights").
class PageRegion {
 public:
  PageRegion() = default;
  // `bytes` of zero pages (none for 0).
  explicit PageRegion(size_t bytes, PageSize pages = PageSize::Small) : bytes_(bytes) {
    if (bytes == 0) return;
    if (pages == PageSize::Small) {
      data_ = static_cast<uint8_t*>(map_zero_pages(bytes));
      mapping_ = data_;
      mapping_bytes_ = bytes;
      return;
    }
    // One 2 MiB page more than asked for, so that the region can start on a 2 MiB boundary.
    mapping_bytes_ = bytes + kHugePageBytes;
    mapping_ = map_zero_pages(mapping_bytes_);
    const uintptr_t first = (reinterpret_cast<uintptr_t>(mapping_) + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    data_ = reinterpret_cast<uint8_t*>(first);
    ::madvise(data_, bytes, MADV_HUGEPAGE);
  }
  // A mapping made elsewhere (a file's, mmap), owned from now on.
  PageRegion(void* mapping, size_t bytes)
      : data_(static_cast<uint8_t*>(mapping)), bytes_(bytes), mapping_(mapping), mapping_bytes_(bytes) {}
  PageRegion(PageRegion&& other) noexcept { *this = std::move(other); }
  PageRegion& operator=(PageRegion&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = other.bytes_;
      mapping_ = std::exchange(other.mapping_, nullptr);
      mapping_bytes_ = other.mapping_bytes_;
    }
    return *this;
  }
  ~PageRegion() { release(); }

  uint8_t* data() const { return data_; }
  size_t size() const { return data_ ? bytes_ : 0; }

 private:
  void release() noexcept {
    if (mapping_) unmap_pages(mapping_, mapping_bytes_);
    data_ = nullptr;
    mapping_ = nullptr;
  }
  uint8_t* data_ = nullptr;
  size_t bytes_ = 0;
  void* mapping_ = nullptr;  // what to unmap: data_'s mapping, which may start before it
  size_t mapping_bytes_ = 0;
};

}  // namespace slm
