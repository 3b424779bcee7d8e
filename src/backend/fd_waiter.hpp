// Private: an epoll set plus a wake-up eventfd, the waiting primitive of the process backend's
// threads (children's pidfds, function workers' sockets).
#pragma once

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <span>
#include <string>

#include "asyncflow/common/error.hpp"
#include "process_util.hpp"

namespace asyncflow::detail {

/// Waits for readable (or, when asked, writable) descriptors, each registered with a non-null
/// tag, or for wake().
/// wait() and add()/remove() may run on different threads (epoll allows it); wake() is
/// async-signal-safe and thread-safe.
class FdWaiter {
 public:
  /// Throws asyncflow::Error naming `owner` when the kernel objects cannot be created.
  explicit FdWaiter(const std::string& owner) {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (epoll_ < 0 || wake_ < 0) {
      const int e = errno;
      close_all();
      throw Error(owner + ": cannot set up waiting (epoll/eventfd): " + errno_text(e));
    }
    add(wake_, nullptr);
  }
  ~FdWaiter() { close_all(); }
  FdWaiter(const FdWaiter&) = delete;
  FdWaiter& operator=(const FdWaiter&) = delete;

  void add(int fd, void* tag) noexcept {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = tag;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
  }
  /// Changes whether `fd` (added before) also wakes wait() when it is writable.
  void watch(int fd, void* tag, bool writable) noexcept {
    epoll_event ev{};
    ev.events = EPOLLIN | (writable ? EPOLLOUT : 0u);
    ev.data.ptr = tag;
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev);
  }
  void remove(int fd) noexcept { ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr); }
  /// Ends a wait() in progress (or the next one) early.
  void wake() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(wake_, &one, sizeof one);
  }

  /// Waits up to `timeout_ms` (-1: no limit); fills `tags` with the tags of the ready
  /// descriptors and returns how many (0 after a timeout or a wake()).
  int wait(std::span<void*> tags, int timeout_ms) noexcept {
    epoll_event events[64];
    const int max = static_cast<int>(std::min<std::size_t>(tags.size(), 64));
    const int n = ::epoll_wait(epoll_, events, max, timeout_ms);
    int out = 0;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        std::uint64_t count;
        [[maybe_unused]] ssize_t r = ::read(wake_, &count, sizeof count);
      } else {
        tags[static_cast<std::size_t>(out++)] = events[i].data.ptr;
      }
    }
    return out;
  }

 private:
  void close_all() noexcept {
    if (wake_ >= 0) ::close(wake_);
    if (epoll_ >= 0) ::close(epoll_);
  }
  int epoll_ = -1;
  int wake_ = -1;
};

}  // namespace asyncflow::detail
