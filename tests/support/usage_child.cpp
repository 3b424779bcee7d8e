// A program with a known appetite, for the per-task usage tests: it burns CPU, touches
// memory or writes a file, as told. Built without sanitizers (their shadow memory would be
// counted as its own).
//   usage_child burn SECONDS     spins until it has used SECONDS of CPU
//   usage_child touch MIB        maps MIB MiB and writes every page once
//   usage_child write MIB PATH   writes MIB MiB to PATH and fsyncs it
#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int burn(double seconds) {
  volatile unsigned long spin = 0;
  while (cpu_seconds() < seconds) {
    for (int i = 0; i < 100000; ++i) spin = spin + 1;
  }
  return 0;
}

int touch(std::size_t mib) {
  const std::size_t bytes = mib << 20;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 2;
  const long page = sysconf(_SC_PAGESIZE);
  for (std::size_t at = 0; at < bytes; at += static_cast<std::size_t>(page))
    static_cast<volatile char*>(p)[at] = 1;
  return 0;
}

int write_file(std::size_t mib, const char* path) {
  const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return 2;
  static char chunk[1 << 20];
  std::memset(chunk, 'x', sizeof chunk);
  for (std::size_t i = 0; i < mib; ++i) {
    if (write(fd, chunk, sizeof chunk) != static_cast<ssize_t>(sizeof chunk)) return 3;
  }
  if (fsync(fd) != 0) return 4;
  return close(fd) == 0 ? 0 : 5;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::strcmp(argv[1], "burn") == 0) return burn(std::atof(argv[2]));
  if (argc >= 3 && std::strcmp(argv[1], "touch") == 0)
    return touch(std::strtoul(argv[2], nullptr, 10));
  if (argc >= 4 && std::strcmp(argv[1], "write") == 0)
    return write_file(std::strtoul(argv[2], nullptr, 10), argv[3]);
  std::fprintf(stderr, "usage: usage_child burn SECONDS | touch MIB | write MIB PATH\n");
  return 64;
}
