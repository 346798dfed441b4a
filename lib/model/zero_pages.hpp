// Memory straight from the kernel (an anonymous mmap): zero pages that take no RAM until they
// are written, given back whole (munmap) when freed. Two users: the forward scratch, sized
// for the largest batch but mostly untouched by a short prompt (scratch_rows.hpp), and the
// weights' interleaved tiles, one region for all of them written once at load.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <new>

namespace slm {

// `bytes` (> 0) of zeros, or std::bad_alloc.
inline void* map_zero_pages(size_t bytes) {
  void* pages = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (pages == MAP_FAILED) throw std::bad_alloc();
  return pages;
}

inline void unmap_pages(void* pages, size_t bytes) noexcept { ::munmap(pages, bytes); }

// One mapped region, owned: zero pages, or a file's pages (the tile cache's). (2 MiB pages, MADV_HUGEPAGE, were tried for the tiles: on
// this project's VMs they faulted in slower than 4 KiB ones, 1.3-1.9 s of CPU for 800 MB
// against 0.43 s, each one fresh host memory.)
class PageRegion {
 public:
  PageRegion() = default;
  // `bytes` of zero pages (none for 0).
  explicit PageRegion(size_t bytes) : bytes_(bytes) {
    if (bytes > 0) data_ = static_cast<uint8_t*>(map_zero_pages(bytes));
  }
  // A mapping made elsewhere (a file's, mmap), owned from now on.
  PageRegion(void* mapping, size_t bytes) : data_(static_cast<uint8_t*>(mapping)), bytes_(bytes) {}
  PageRegion(PageRegion&& other) noexcept : data_(other.data_), bytes_(other.bytes_) { other.data_ = nullptr; }
  PageRegion& operator=(PageRegion&& other) noexcept {
    if (this != &other) {
      release();
      data_ = other.data_;
      bytes_ = other.bytes_;
      other.data_ = nullptr;
    }
    return *this;
  }
  ~PageRegion() { release(); }

  uint8_t* data() const { return data_; }
  size_t size() const { return data_ ? bytes_ : 0; }

 private:
  void release() noexcept {
    if (data_) unmap_pages(data_, bytes_);
    data_ = nullptr;
  }
  uint8_t* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace slm
