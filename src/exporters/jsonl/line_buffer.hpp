// Internal: the buffer checkpoint lines are formatted into. Unlike std::string it does not
// zero the room it makes (std::string::resize did, and that memset was 5% of the dispatcher's
// time in perf): each byte is written once, by the formatter.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

namespace asyncflow::detail {

class LineBuffer {
 public:
  LineBuffer() = default;
  LineBuffer(LineBuffer&& other) noexcept
      : data_(std::move(other.data_)),
        size_(std::exchange(other.size_, 0)),
        capacity_(std::exchange(other.capacity_, 0)) {}
  LineBuffer& operator=(LineBuffer&& other) noexcept {
    data_ = std::move(other.data_);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
    return *this;
  }

  const char* data() const noexcept { return data_.get(); }
  char* data() noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::string_view view() const noexcept { return {data_.get(), size_}; }
  /// Forgets the contents, keeps the capacity.
  void clear() noexcept { size_ = 0; }

  /// Makes room for at least `n` bytes after size() (the contents are kept) and returns the
  /// end of the allocation; the room is not initialized.
  char* make_room(std::size_t n) {
    if (capacity_ - size_ < n) {
      const std::size_t capacity = std::max({size_ + n, 2 * capacity_, kMinCapacity});
      auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
      if (size_ != 0) std::memcpy(bigger.get(), data_.get(), size_);
      data_ = std::move(bigger);
      capacity_ = capacity;
    }
    return data_.get() + capacity_;
  }
  /// The new size, once bytes were written into the room (at most the capacity).
  void set_size(std::size_t size) noexcept { size_ = size; }

 private:
  static constexpr std::size_t kMinCapacity = 4096;

  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace asyncflow::detail
