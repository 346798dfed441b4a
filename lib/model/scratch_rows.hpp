// Scratch rows that take memory only where a forward pass writes them. A BatchDecoder sizes
// its scratch for its largest batch (512 rows by default: 54 MiB for Llama-3.2-1B), and a
// std::vector<float> of zeros writes every page of it at once; a 20-token prompt then keeps
// all of them resident. Here large arrays come from the kernel as zero pages (mmap), which
// cost nothing until touched, so the elements are the same zeros without being written.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

#include "lib/ops/page_region.hpp"

namespace slm {

template <class T>
struct UntouchedZeroAllocator {
  using value_type = T;
  static constexpr size_t kMappedBytes = size_t{1} << 20;  // smaller arrays: calloc

  UntouchedZeroAllocator() = default;
  template <class U>
  UntouchedZeroAllocator(const UntouchedZeroAllocator<U>&) noexcept {}

  T* allocate(size_t n) {
    void* bytes = nullptr;
    if (n * sizeof(T) >= kMappedBytes) {
      bytes = map_zero_pages(n * sizeof(T));
    } else if (!(bytes = std::calloc(n, sizeof(T)))) {
      throw std::bad_alloc();
    }
    return static_cast<T*>(bytes);
  }
  void deallocate(T* p, size_t n) noexcept {
    if (n * sizeof(T) >= kMappedBytes) unmap_pages(p, n * sizeof(T));
    else std::free(p);
  }
  // Value-initialization (std::vector's n elements) leaves the zeros allocate() gave. Only for
  // arrays sized once, as ForwardScratch's are: growing one within its capacity after shrinking
  // it would leave the old values where zeros were asked for.
  template <class U>
  void construct(U*) noexcept {}
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <class U>
  bool operator==(const UntouchedZeroAllocator<U>&) const noexcept { return true; }
};

using ScratchRows = std::vector<float, UntouchedZeroAllocator<float>>;

}  // namespace slm
