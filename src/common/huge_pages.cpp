// allocate_huge() and free_huge() (huge_pages.hpp).
#include "huge_pages.hpp"

#include <sys/mman.h>

#include <cstdint>

namespace asyncflow::detail {

void* allocate_huge(std::size_t bytes) {
  const std::size_t size = huge_allocation_size(bytes);
  if (size < bytes) throw std::bad_alloc();  // overflow
  // Map one huge page more than needed and unmap the unaligned ends.
  const std::size_t mapped = size + kHugePageSize;
  void* raw = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto begin = reinterpret_cast<std::uintptr_t>(raw);
  const auto aligned = (begin + kHugePageSize - 1) & ~(std::uintptr_t{kHugePageSize} - 1);
  if (aligned != begin) ::munmap(raw, aligned - begin);
  const std::size_t tail = (begin + mapped) - (aligned + size);
  if (tail != 0) ::munmap(reinterpret_cast<void*>(aligned + size), tail);
  auto* p = reinterpret_cast<void*>(aligned);
  ::madvise(p, size, MADV_HUGEPAGE);  // a hint: refused where huge pages are off
  return p;
}

void free_huge(void* p, std::size_t bytes) noexcept {
  if (p != nullptr) ::munmap(p, huge_allocation_size(bytes));
}

}  // namespace asyncflow::detail
