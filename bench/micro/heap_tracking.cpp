// Global operator new/delete replacement that keeps live-heap counters (see heap_tracking.hpp).
//
// Why per-thread counters: tracking is always on (a window switched on and off would
// mis-count blocks allocated outside it and freed inside), so it must not skew the
// multi-threaded throughput benchmarks. A shared atomic would bounce one cache line between
// the submitting thread and the pool workers on every allocation. Instead each thread owns a
// cache-line-sized slot that only it writes, with plain relaxed load + store (no locked
// read-modify-write); readers sum the slots. A block freed by another thread than the one
// that allocated it makes the freeing thread's slot go negative: only the sum is meaningful.
//
// Sizes come from malloc_usable_size() on both sides, so unsized, sized and aligned deletes
// all subtract exactly what the matching new added, whatever size the caller passes.
#include "heap_tracking.hpp"

#include <malloc.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace asyncflow::bench {
namespace {

struct alignas(64) Slot {
  std::atomic<std::int64_t> bytes{0};
  std::atomic<std::int64_t> blocks{0};
  std::atomic<std::int64_t> allocations{0};
};

// Every benchmark run of a thread-pool engine starts fresh worker threads, so a full run
// uses a few hundred threads at most; later ones share the overflow slot (with atomic RMW).
constexpr std::size_t kSlots = 4096;
Slot g_slots[kSlots];  // constant-initialized: usable by allocations during static init
Slot g_overflow;
std::atomic<std::size_t> g_slots_claimed{0};
thread_local Slot* tl_slot = nullptr;  // trivial: no TLS guard, safe at thread start/exit

Slot& my_slot() noexcept {
  Slot* s = tl_slot;
  if (s == nullptr) {
    const std::size_t i = g_slots_claimed.fetch_add(1, std::memory_order_relaxed);
    s = i < kSlots ? &g_slots[i] : &g_overflow;
    tl_slot = s;
  }
  return *s;
}

void add(std::atomic<std::int64_t>& counter, std::int64_t delta, bool shared) noexcept {
  if (shared) {
    counter.fetch_add(delta, std::memory_order_relaxed);
  } else {  // sole writer: a plain store is enough, and readers never see a torn value
    counter.store(counter.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
}

void record(void* p, std::int64_t sign) noexcept {
  Slot& s = my_slot();
  const bool shared = &s == &g_overflow;
  add(s.bytes, sign * static_cast<std::int64_t>(malloc_usable_size(p)), shared);
  add(s.blocks, sign, shared);
  if (sign > 0) add(s.allocations, 1, shared);
}

void* allocate(std::size_t size, std::size_t align) noexcept {
  if (size == 0) size = 1;  // new(0) must return a distinct pointer
  void* p = nullptr;
  if (align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
    p = std::malloc(size);
  } else if (posix_memalign(&p, align, size) != 0) {  // align_val_t is a power of two > 16
    p = nullptr;
  }
  if (p != nullptr) record(p, +1);
  return p;
}

void* allocate_or_throw(std::size_t size, std::size_t align) {
  for (;;) {
    if (void* p = allocate(size, align)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void* allocate_nothrow(std::size_t size, std::size_t align) noexcept {
  try {
    return allocate_or_throw(size, align);
  } catch (...) {
    return nullptr;
  }
}

void deallocate(void* p) noexcept {
  if (p == nullptr) return;
  record(p, -1);
  std::free(p);
}

}  // namespace

HeapStats heap_stats() noexcept {
  HeapStats total;
  std::size_t n = g_slots_claimed.load(std::memory_order_acquire);
  if (n > kSlots) n = kSlots;
  auto sum = [&total](const Slot& s) {
    total.live_bytes += s.bytes.load(std::memory_order_relaxed);
    total.live_blocks += s.blocks.load(std::memory_order_relaxed);
    total.allocations += s.allocations.load(std::memory_order_relaxed);
  };
  for (std::size_t i = 0; i < n; ++i) sum(g_slots[i]);
  sum(g_overflow);
  return total;
}

}  // namespace asyncflow::bench

namespace ab = asyncflow::bench;

// clang-format off
void* operator new(std::size_t n) { return ab::allocate_or_throw(n, 0); }
void* operator new[](std::size_t n) { return ab::allocate_or_throw(n, 0); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return ab::allocate_nothrow(n, 0); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return ab::allocate_nothrow(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return ab::allocate_or_throw(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return ab::allocate_or_throw(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { return ab::allocate_nothrow(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { return ab::allocate_nothrow(n, static_cast<std::size_t>(a)); }

void operator delete(void* p) noexcept { ab::deallocate(p); }
void operator delete[](void* p) noexcept { ab::deallocate(p); }
void operator delete(void* p, std::size_t) noexcept { ab::deallocate(p); }
void operator delete[](void* p, std::size_t) noexcept { ab::deallocate(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { ab::deallocate(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { ab::deallocate(p); }
void operator delete(void* p, std::align_val_t) noexcept { ab::deallocate(p); }
void operator delete[](void* p, std::align_val_t) noexcept { ab::deallocate(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { ab::deallocate(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { ab::deallocate(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { ab::deallocate(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { ab::deallocate(p); }
// clang-format on
