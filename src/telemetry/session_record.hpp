// Internal: what a session keeps for reading while it runs and after it stopped — finished
// spans (bounded history), task duration statistics (bounded too), the last resource sample
// per node, the session's length — and the read-side queries built on it (traces, task spans,
// duration statistics).
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/manager.hpp"
#include "common/huge_pages.hpp"
#include "duration_stats.hpp"

namespace asyncflow::detail {

/// Thread-safe: the dispatcher writes, readers (summary(), read_traces(), ...) read.
class SessionRecord {
 public:
  SessionRecord(std::string session_id, std::size_t span_history)
      : session_id_(std::move(session_id)), span_history_(span_history) {}

  /// Notes what the read side keeps of `event` (SessionEnded's duration, per-node samples).
  void note(const Event& event);
  /// Adds the durations of the complete tasks among `spans`, and the usage of those that
  /// measured some. Called before the spans are exported: the statistics stay whole when
  /// stop() gives up on a hung exporter.
  void add_durations(const std::vector<SpanRecord>& spans);
  /// Keeps finished spans in the history, moving them out of `spans`.
  void keep(std::vector<SpanRecord>& spans);
  /// The session's length, once known (SessionEnded, or stop()).
  void set_ended(double duration_seconds);

  std::vector<SpanData> traces(const std::optional<std::string>& session_id,
                               const std::optional<std::string>& task_id) const;
  std::vector<TaskSpanInfo> task_spans() const;
  std::optional<DurationStats> duration_stats() const;
  std::optional<UsageTotals> usage() const;
  std::map<std::string, ResourceSample> resources() const;
  std::optional<double> ended() const;

 private:
  void add_usage(const Attributes& usage) ASYNCFLOW_REQUIRES(mu_);

  const std::string session_id_;
  const std::size_t span_history_;
  mutable Mutex mu_;
  // The last span_history_ finished spans, a ring in blocks of kHistoryBlock: a deque held
  // two of these 208-byte records per node, so keeping a span cost a malloc and, once full,
  // a free (perf on BM_IndependentNoopTelemetry); a full ring move-assigns over its oldest.
  // Blocks of two huge pages: the history fills tens of megabytes of fresh memory, and with
  // 4 KiB pages their faults were a third of the dispatcher's time at 100,000 tasks.
  using HistoryBlock = std::vector<SpanRecord, HugePageAllocator<SpanRecord>>;
  static constexpr std::size_t kHistoryBlock = 2 * kHugePageSize / sizeof(SpanRecord);
  static constexpr std::size_t kFirstBlockReserve = 256;
  SpanRecord& history_at(std::size_t i) ASYNCFLOW_REQUIRES(mu_) {
    return history_[i / kHistoryBlock][i % kHistoryBlock];
  }
  const SpanRecord& history_at(std::size_t i) const ASYNCFLOW_REQUIRES(mu_) {
    return history_[i / kHistoryBlock][i % kHistoryBlock];
  }
  /// Calls f on each kept span, oldest first.
  template <class F>
  void for_each_kept(F&& f) const ASYNCFLOW_REQUIRES(mu_) {
    for (std::size_t k = 0; k < history_size_; ++k) {
      f(history_at((history_oldest_ + k) % span_history_));
    }
  }
  std::vector<HistoryBlock> history_ ASYNCFLOW_GUARDED_BY(mu_);
  std::size_t history_size_ ASYNCFLOW_GUARDED_BY(mu_) = 0;
  std::size_t history_oldest_ ASYNCFLOW_GUARDED_BY(mu_) = 0;  // its index, once the ring is full
  // Complete tasks' durations as bounded streaming statistics: one double per task grew
  // without end (80 MB at 10M tasks) and summary() sorted a copy of them all.
  DurationStatistics durations_ ASYNCFLOW_GUARDED_BY(mu_);
  std::map<std::string, ResourceSample> resources_ ASYNCFLOW_GUARDED_BY(mu_);
  UsageTotals usage_ ASYNCFLOW_GUARDED_BY(mu_);
  std::optional<double> ended_ ASYNCFLOW_GUARDED_BY(mu_);
};

/// A span or trace id as Python's hex(int) writes it ("0x5f3a…", not zero-padded); "" for 0.
std::string python_hex(std::uint64_t id);
std::string python_hex(const TraceId& id);

}  // namespace asyncflow::detail
