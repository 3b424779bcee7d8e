// Internal: memory for large arrays that are written once and then live for the session (the
// span history, the checkpoint's line buffers), in 2 MiB-aligned mappings that the kernel may
// back with transparent huge pages. A first write to a 4 KiB page costs a page fault; on this
// project's virtual machines one cost 11 µs (25 MB touched: 70 ms; with huge pages 4.5 ms), which
// was 0.7 µs per task of the span history alone on BM_IndependentNoopTelemetry/100000.
#pragma once

#include <cstddef>
#include <new>

namespace asyncflow::detail {

/// The size huge-page mappings come in.
inline constexpr std::size_t kHugePageSize = std::size_t{2} << 20;

/// `bytes` rounded up to the size allocate_huge() maps for it (a whole number of huge pages).
constexpr std::size_t huge_allocation_size(std::size_t bytes) noexcept {
  return (bytes + kHugePageSize - 1) / kHugePageSize * kHugePageSize;
}

/// A zeroed, 2 MiB-aligned mapping of huge_allocation_size(bytes) bytes, advised for huge
/// pages (used where transparent huge pages are enabled for madvise or always; plain pages
/// otherwise). Throws std::bad_alloc. Thread-safe.
void* allocate_huge(std::size_t bytes);
/// Unmaps what allocate_huge(bytes) returned. Thread-safe.
void free_huge(void* p, std::size_t bytes) noexcept;

/// A standard allocator over allocate_huge() for arrays of at least one huge page, and over
/// operator new for smaller ones (a small session does not pay 2 MiB per array).
/// Thread-safe (stateless).
template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>& /*other*/) noexcept {}

  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_alloc();
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kHugePageSize) return static_cast<T*>(::operator new(bytes));
    return static_cast<T*>(allocate_huge(bytes));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kHugePageSize) {
      ::operator delete(p);
    } else {
      free_huge(p, bytes);
    }
  }
  template <class U>
  bool operator==(const HugePageAllocator<U>& /*other*/) const noexcept {
    return true;
  }
};

}  // namespace asyncflow::detail
