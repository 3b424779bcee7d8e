// JsonlExporter (jsonl_exporter.hpp): formats into a buffer under a mutex (the formatting
// thread, force_flush() and the writer thread's 100 ms pull meet there) and hands full buffers
// to the writer thread (WriteBehind).
//
// Lock order: mu_ before WriteBehind's own lock (submit() is called under mu_). The writer
// thread never waits for mu_ (its pull only try-locks), so a submit() waiting for room under
// mu_ cannot wait on it.
#include "asyncflow/exporters/jsonl/jsonl_exporter.hpp"

#include <atomic>
#include <cstring>
#include <mutex>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/exporters/jsonl/checkpoint_writer.hpp"
#include "asyncflow/telemetry/options.hpp"
#include "common/huge_pages.hpp"
#include "json_cursor.hpp"
#include "line_buffer.hpp"
#include "line_writers.hpp"
#include "render_cache.hpp"
#include "write_behind.hpp"

namespace asyncflow {

namespace {

using asyncflow::detail::LineBuffer;
using jsonl::detail::JsonCursor;
using jsonl::detail::RenderCache;

// Lines are handed to the writer when this much has accumulated: one write() per event batch
// cost more than formatting when batches are small. 1 MiB rather than 256 KiB: a quarter of
// the writer's wake-ups (futex calls per 100k no-op tasks: 5,500 before, 840 after).
constexpr std::size_t kWriteThreshold = 1024 * 1024;
// Every buffer is made this large once and then reused: the threshold plus a batch of lines
// (512 events' room) fits, so formatting never grows a buffer and copies it, and a huge page
// is one page fault where growing 4 KiB pages one at a time faulted hundreds of times per
// buffer (BM_IndependentNoopTelemetry/100000: a tenth of the dispatcher's time).
constexpr std::size_t kBufferCapacity = asyncflow::detail::kHugePageSize;
// Linux stops a write killed by SIGKILL at a page boundary of the file (4 KiB pages; large
// folios are multiples of it): 200 of 200 torn files in a test of 200 kills of a writer.
constexpr std::size_t kPage = 4096;

std::chrono::steady_clock::time_point deadline_after(std::chrono::microseconds timeout) {
  return std::chrono::steady_clock::now() + timeout;
}

}  // namespace

struct JsonlExporter::Impl {
  explicit Impl(const JsonlExporterOptions& o)
      : writer(o.dir, o.session_id,
               o.epoch_seconds != 0 ? o.epoch_seconds : static_cast<std::int64_t>(epoch_seconds())),
        aligned(o.whole_lines_on_kill),
        write_behind([this](std::string_view buffer) { write(buffer); },
                     [this](LineBuffer& buffer) { pull(buffer); }) {}

  /// The writer thread: one buffer.
  void write(std::string_view buffer) {
    if (!writer.append(buffer)) failed.store(true, std::memory_order_release);
  }
  /// The writer thread, every 100 ms while lines wait: takes them unless a formatter holds mu.
  void pull(LineBuffer& buffer) {
    if (!mu.try_lock()) return;
    const std::size_t keep = held_back();
    if (lines.size() != keep) {
      std::swap(buffer, lines);
      keep_tail(buffer, keep);
    }
    mu.unlock();
  }
  /// Requires mu: hands the formatted lines to the writer thread; all of them, or all but the
  /// last (see held_back()).
  void submit_locked(bool everything) ASYNCFLOW_REQUIRES(mu) {
    const std::size_t keep = everything ? 0 : held_back();
    if (lines.size() == keep) return;
    LineBuffer handed = std::move(lines);
    lines = std::move(spare);
    keep_tail(handed, keep);
    write_behind.submit(handed);
    spare = std::move(handed);  // the writer gave back an empty buffer with capacity
  }
  /// How many bytes at the end of `lines` to keep: the last line, so that the next line can
  /// still pad it (whole_lines_on_kill) instead of starting with a blank line.
  std::size_t held_back() const ASYNCFLOW_REQUIRES(mu) {
    return aligned ? lines.size() - last_line : 0;
  }
  /// Moves the last `keep` bytes of `from` (whole lines about to be handed over) to `lines`.
  void keep_tail(LineBuffer& from, std::size_t keep) ASYNCFLOW_REQUIRES(mu) {
    const std::size_t handed = from.size() - keep;
    lines.reserve(kBufferCapacity);
    if (keep != 0) {
      lines.make_room(keep);
      std::memcpy(lines.data() + lines.size(), from.data() + handed, keep);
      lines.set_size(lines.size() + keep);
    }
    from.set_size(handed);
    offset += handed;
    last_line = 0;
  }
  /// Requires mu: after the lines of one export call.
  void after_export_locked() ASYNCFLOW_REQUIRES(mu) {
    if (lines.size() >= kWriteThreshold) {
      submit_locked(/*everything=*/false);
    } else if (!lines.empty()) {
      write_behind.poke();
    }
  }
  /// One export call: each record of `batch` becomes a line (`write(cursor, record, cache)`,
  /// called with mu held), kept within a page; kFailure once a write failed, after shutdown,
  /// or out of memory.
  template <class Record, class Write>
  ExportResult export_lines(std::span<const Record> batch, Write write) noexcept {
    if (failed.load(std::memory_order_acquire) || shut_down.load(std::memory_order_relaxed)) {
      return ExportResult::kFailure;
    }
    try {
      MutexLock lock(mu);
      lines.reserve(kBufferCapacity);
      {
        JsonCursor w(lines, batch.size() * jsonl::detail::kExpectedLineSize);
        for (const Record& r : batch) {
          const std::size_t start = w.mark();
          write(w, r, cache);
          end_line(w, start);
        }
      }
      after_export_locked();
    } catch (...) {  // out of memory
      return ExportResult::kFailure;
    }
    return ExportResult::kSuccess;
  }
  /// Keeps the line that began at `start` within a page (JsonlExporterOptions::
  /// whole_lines_on_kill); requires mu.
  void end_line(JsonCursor& w, std::size_t start) ASYNCFLOW_REQUIRES(mu) {
    if (!aligned) return;
    last_line = start + w.keep_within_page(start, offset, kPage);
  }

  CheckpointWriter writer;  // the writer thread's, and shutdown()'s once it has ended
  const bool aligned;
  std::atomic<bool> failed{false};
  std::atomic<bool> shut_down{false};

  Mutex mu;
  LineBuffer lines ASYNCFLOW_GUARDED_BY(mu);  // formatted, not yet handed over
  LineBuffer spare ASYNCFLOW_GUARDED_BY(mu);  // an empty buffer with capacity, for the next lines
  std::size_t last_line ASYNCFLOW_GUARDED_BY(mu) = 0;  // where the last line in `lines` starts
  std::uint64_t offset ASYNCFLOW_GUARDED_BY(mu) = 0;   // file offset of lines' first byte
  jsonl::detail::RenderCache cache ASYNCFLOW_GUARDED_BY(mu);
  jsonl::detail::WriteBehind write_behind;  // last: its thread uses the members above
};

std::shared_ptr<JsonlExporter> JsonlExporter::create(JsonlExporterOptions options) {
  return std::shared_ptr<JsonlExporter>(new JsonlExporter(std::make_unique<Impl>(options)));
}

JsonlExporter::JsonlExporter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

JsonlExporter::~JsonlExporter() {
  if (!impl_->shut_down.load(std::memory_order_acquire)) shutdown(std::chrono::seconds(5));
}

const std::filesystem::path& JsonlExporter::path() const noexcept {
  return impl_->writer.path();
}

std::string JsonlExporter::name() const {
  return "jsonl checkpoint '" + path().string() + "'";
}

ExportResult JsonlExporter::export_events(std::span<const Event> batch) noexcept {
  return impl_->export_lines(batch, [](JsonCursor& w, const Event& e, RenderCache& cache) {
    jsonl::detail::write_event_line(w, e, e.trace_id(), e.span_id(), &cache);
  });
}

ExportResult JsonlExporter::export_spans(std::span<const SpanRecord> batch) noexcept {
  return impl_->export_lines(batch, [](JsonCursor& w, const SpanRecord& s, RenderCache& cache) {
    if (const auto* task = std::get_if<TaskSpan>(&s)) {
      jsonl::detail::write_span_line(w, *task, &cache);
    } else {
      jsonl::detail::write_span_line(w, std::get<SpanData>(s));
    }
  });
}

ExportResult JsonlExporter::export_metrics(const MetricsSnapshot& snapshot) noexcept {
  return impl_->export_lines(std::span<const MetricsSnapshot>(&snapshot, 1),
                             [](JsonCursor& w, const MetricsSnapshot& m, RenderCache&) {
                               jsonl::detail::write_metric_line(
                                   w, static_cast<double>(m.time_ns) / 1e9, m);
                             });
}

bool JsonlExporter::force_flush(std::chrono::microseconds timeout) noexcept {
  Impl& m = *impl_;
  const auto deadline = deadline_after(timeout);
  try {
    MutexLock lock(m.mu);
    m.submit_locked(/*everything=*/true);
  } catch (...) {
    return false;
  }
  return m.write_behind.drain(deadline) && !m.failed.load(std::memory_order_acquire);
}

bool JsonlExporter::shutdown(std::chrono::microseconds timeout) noexcept {
  Impl& m = *impl_;
  if (m.shut_down.load(std::memory_order_acquire)) return !m.failed.load(std::memory_order_acquire);
  (void)timeout;  // what was accepted is written whatever the timeout: it is on its way to disk
  try {
    MutexLock lock(m.mu);
    m.submit_locked(/*everything=*/true);
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the writer still closes
  }
  m.write_behind.stop();
  m.writer.close();
  m.shut_down.store(true, std::memory_order_release);
  if (m.writer.failed()) m.failed.store(true, std::memory_order_release);
  return !m.failed.load(std::memory_order_acquire);
}

ExporterLosses JsonlExporter::losses() const {
  // The writer's counts are final, and safe to read, once shutdown() joined the writer
  // thread. Until then a failure shows at once in the failing exports and force_flush().
  const Impl& m = *impl_;
  if (!m.shut_down.load(std::memory_order_acquire)) return {};
  return ExporterLosses{m.writer.lines_lost(), m.writer.last_error()};
}

namespace detail {

void install_jsonl_checkpoint() noexcept {
  set_checkpoint_exporter_factory([](const CheckpointRequest& request) {
    auto exporter = JsonlExporter::create({.dir = request.dir,
                                           .session_id = request.session_id,
                                           .epoch_seconds = request.epoch_seconds});
    std::filesystem::path file = exporter->path();
    return CheckpointExporter{std::move(exporter), std::move(file)};
  });
}

}  // namespace detail

}  // namespace asyncflow
