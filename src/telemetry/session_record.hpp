// Internal: what a session keeps for reading while it runs and after it stopped — finished
// spans (bounded history), task durations, the last resource sample per node, the session's
// length — and the read-side queries built on it (traces, task spans, duration statistics).
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/manager.hpp"

namespace asyncflow::detail {

/// Thread-safe: the dispatcher writes, readers (summary(), read_traces(), ...) read.
class SessionRecord {
 public:
  SessionRecord(std::string session_id, std::size_t span_history)
      : session_id_(std::move(session_id)), span_history_(span_history) {}

  /// Notes what the read side keeps of `event` (SessionEnded's duration, per-node samples).
  void note(const Event& event);
  /// Keeps finished spans (moving them out of `spans`) and the durations of complete tasks.
  void keep(std::vector<SpanRecord>& spans);
  /// The session's length, once known (SessionEnded, or stop()).
  void set_ended(double duration_seconds);

  std::vector<SpanData> traces(const std::optional<std::string>& session_id,
                               const std::optional<std::string>& task_id) const;
  std::vector<TaskSpanInfo> task_spans() const;
  std::optional<DurationStats> duration_stats() const;
  std::map<std::string, ResourceSample> resources() const;
  std::optional<double> ended() const;

 private:
  const std::string session_id_;
  const std::size_t span_history_;
  mutable Mutex mu_;
  std::deque<SpanRecord> history_ ASYNCFLOW_GUARDED_BY(mu_);
  std::vector<double> durations_ ASYNCFLOW_GUARDED_BY(mu_);
  std::map<std::string, ResourceSample> resources_ ASYNCFLOW_GUARDED_BY(mu_);
  std::optional<double> ended_ ASYNCFLOW_GUARDED_BY(mu_);
};

/// A span or trace id as Python's hex(int) writes it ("0x5f3a…", not zero-padded); "" for 0.
std::string python_hex(std::uint64_t id);
std::string python_hex(const TraceId& id);

}  // namespace asyncflow::detail
