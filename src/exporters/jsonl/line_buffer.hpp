// Internal: the buffer checkpoint lines are formatted into. Unlike std::string it does not
// zero the room it makes (std::string::resize did, and that memset was 5% of the dispatcher's
// time in perf): each byte is written once, by the formatter.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string_view>
#include <utility>

#include "common/huge_pages.hpp"

namespace asyncflow::detail {

class LineBuffer {
 public:
  LineBuffer() = default;
  LineBuffer(LineBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        capacity_(std::exchange(other.capacity_, 0)) {}
  LineBuffer& operator=(LineBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      capacity_ = std::exchange(other.capacity_, 0);
    }
    return *this;
  }
  ~LineBuffer() { release(); }

  const char* data() const noexcept { return data_; }
  char* data() noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }
  std::string_view view() const noexcept { return {data_, size_}; }
  /// Forgets the contents, keeps the capacity.
  void clear() noexcept { size_ = 0; }

  /// Makes room for at least `n` bytes after size() (the contents are kept) and returns the
  /// end of the allocation; the room is not initialized.
  char* make_room(std::size_t n) {
    if (capacity_ - size_ < n) reserve(std::max({size_ + n, 2 * capacity_, kMinCapacity}));
    return data_ + capacity_;
  }
  /// Makes the capacity at least `capacity` (the contents are kept). From one huge page up,
  /// the memory is huge-page memory (a buffer is written once per use, and fresh 4 KiB pages
  /// each cost a fault), and the capacity is all of it.
  void reserve(std::size_t capacity) {
    if (capacity <= capacity_) return;
    if (capacity >= kHugePageSize) capacity = huge_allocation_size(capacity);
    char* bigger = Allocator().allocate(capacity);
    if (size_ != 0) std::memcpy(bigger, data_, size_);
    release();
    data_ = bigger;
    capacity_ = capacity;
  }
  /// The new size, once bytes were written into the room (at most the capacity).
  void set_size(std::size_t size) noexcept { size_ = size; }

 private:
  using Allocator = HugePageAllocator<char>;
  static constexpr std::size_t kMinCapacity = 4096;

  void release() noexcept {
    if (data_ != nullptr) Allocator().deallocate(data_, capacity_);
  }

  char* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace asyncflow::detail
