// Fuzzes read_checkpoint() with the input as a checkpoint file: it must never crash or hang,
// and may refuse a file only with asyncflow::Error (the documented type). What it returns must
// hold together: no more records than the file has lines, deduplicated span ids.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <asyncflow/common/error.hpp>
#include <asyncflow/exporters/jsonl/checkpoint_reader.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "checkpoint_reader_fuzzer: %s\n", what);
  std::abort();
}

/// The reader takes a path: the input goes to an in-memory file, reopened through /proc (a
/// new open file, so the reader starts at offset 0), which costs no disk I/O per input.
class MemoryFile {
 public:
  MemoryFile() : fd_(::memfd_create("checkpoint_reader_fuzzer", 0)) {
    if (fd_ < 0) fail("memfd_create failed");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  void assign(const std::uint8_t* data, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0) fail("ftruncate failed");
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) fail("pwrite failed");
      done += static_cast<std::size_t>(n);
    }
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static MemoryFile file;  // one per process, rewritten for each input
  file.assign(data, size);
  asyncflow::Checkpoint cp;
  try {
    cp = asyncflow::read_checkpoint(file.path());
  } catch (const asyncflow::Error&) {
    return 0;  // a file that is not a checkpoint: refused as documented
  }
  // Each line is at most one record; a torn tail is one more line that gave none.
  const auto* end = data + size;
  const std::size_t lines =
      static_cast<std::size_t>(std::count(data, end, '\n')) + (size > 0 && end[-1] != '\n');
  const std::size_t records = cp.events.size() + cp.metrics.size() + cp.spans.size();
  if (records + (cp.torn_tail ? 1 : 0) > lines) fail("more records than lines");
  std::set<std::uint64_t> span_ids;
  for (const auto& span : cp.spans) {
    if (span.span_id == 0) fail("a span without an id was accepted");
    if (!span_ids.insert(span.span_id).second) fail("a span id was not deduplicated");
  }
  return 0;
}
