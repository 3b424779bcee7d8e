// TmpfsMount: a small tmpfs mounted at a directory for a test's scope — a disk that fills up
// (fill()), or that is asked to become read-only (remount_read_only()). Mounting needs the
// privileges the tests have as root; elsewhere mounted() is false and the test skips.
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace asyncflow::testing {

/// Not thread-safe: used by the test's thread.
class TmpfsMount {
 public:
  TmpfsMount(const std::filesystem::path& dir, std::size_t bytes)
      : dir_(dir), options_("size=" + std::to_string(bytes)) {
    std::filesystem::create_directories(dir);
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, options_.c_str()) == 0;
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  bool mounted() const { return mounted_; }

  /// Writes `name` in the mount until the file system is full. Returns the bytes written.
  std::size_t fill(const std::string& name = "filler") {
    const std::string path = (dir_ / name).string();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return 0;
    const std::vector<char> block(4096, 'x');
    std::size_t written = 0;
    for (;;) {
      const ssize_t n = ::write(fd, block.data(), block.size());
      if (n > 0) {
        written += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      break;  // ENOSPC (or a short write of 0 bytes): full
    }
    ::close(fd);
    return written;
  }

  /// Asks the kernel to make the mount read-only. Returns 0, or the errno it refused with
  /// (EBUSY while a file on it is open for writing).
  int remount_read_only() {
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, options_.c_str()) == 0)
      return 0;
    return errno;
  }

 private:
  std::filesystem::path dir_;
  std::string options_;
  bool mounted_ = false;
};

}  // namespace asyncflow::testing
