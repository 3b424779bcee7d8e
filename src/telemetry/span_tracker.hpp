// Internal: turns the event stream into spans (session → workflow → block → task) and metric
// updates, on the dispatcher thread. Reference rhapsody-telemetry.md §3.3, §4.2, §4.3.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/span.hpp"
#include "metrics_store.hpp"
#include "session_trace.hpp"

namespace asyncflow::detail {

/// Not thread-safe: owned by the dispatcher thread (and by stop() after the dispatcher ended).
class SpanTracker {
 public:
  /// What an event means to the tracker (defined in span_tracker.cpp).
  enum class Kind : std::uint8_t;

  SpanTracker(std::string session_id, MetricsStore& metrics, const SessionTrace& trace);

  /// Opens the session span (the trace root) at `start_time` (epoch seconds).
  void open_session(double start_time);
  TraceId trace_id() const noexcept { return trace_.trace_id; }
  std::uint64_t session_span_id() const noexcept { return session_.span_id; }

  /// Applies `event` (the caller holds the metrics store's lock): opens/ends spans, updates
  /// metrics, sets the event's span correlation (Event::trace_id / span_id), and for engine
  /// terminal events (duration_seconds NaN) fills in the duration and the
  /// incomplete_lifecycle flag. Spans that end are appended to `finished`.
  void process(Event& event, std::vector<SpanRecord>& finished);

  /// Ends every span still open at `end_time` (tasks that never finished get the attribute
  /// asyncflow.unfinished = true), the session span last.
  void close_all(double end_time, std::vector<SpanRecord>& finished);

  std::size_t open_tasks() const noexcept { return tasks_.size(); }

 private:
  struct OpenTask {
    TaskSpan span;
    double started_at = 0;
    bool started = false;
    bool submitted = false;    // counted in tasks_submitted
    bool in_workflow = false;  // parented to workflows_[*span.workflow_id]: counted in members
    const TaskSeries* series = nullptr;  // backend, executable, task_type (no task_id: cardinality)
  };
  // A workflow span ends when its scope closed and its last task ended, whichever is later
  // (a C++ scope often closes right after creating the tasks it groups).
  struct OpenWorkflow {
    SpanData span;
    int depth = 0;            // open scopes with this id
    std::size_t members = 0;  // open task spans parented to it
  };

  std::uint64_t new_span_id();
  std::uint64_t parent_for(const std::string* workflow_id) const;
  void release_workflow(const std::string& workflow_id, double t,
                        std::vector<SpanRecord>& finished);
  /// The span correlation of `event`, whatever its kind (the body of process()).
  std::pair<TraceId, std::uint64_t> apply(Event& event, std::vector<SpanRecord>& finished);
  OpenTask& task_span(const Event& e, const std::string& task_id);
  /// The metric series of the span's backend, executable and task type.
  const TaskSeries* series_of(const TaskSpan& s);
  std::pair<TraceId, std::uint64_t> end_task(Event& e, Kind kind, const std::string& task_id,
                                             std::vector<SpanRecord>& finished);
  void end_span(SpanData& span, double t, std::vector<SpanRecord>& finished);

  std::string session_id_;
  MetricsStore& metrics_;
  const SessionTrace& trace_;  ///< its trace id is the session's and every span's
  SpanData session_;
  bool session_open_ = false;
  std::unordered_map<std::string, OpenTask> tasks_;
  OpenTask* last_task_ = nullptr;  // the task task_span() found last, and its id
  std::string last_task_id_;
  // What task_span() derived from the last context it saw (kept alive here, so the pointers
  // into its attributes stay valid).
  struct ContextInfo {
    std::shared_ptr<const EventContext> context;
    const std::string* executable = nullptr;
    const std::string* task_type = nullptr;
    const std::string* workflow_id = nullptr;
    std::string backend;                 // of `series`
    const TaskSeries* series = nullptr;  // null: not looked up yet
  };
  ContextInfo last_context_;
  std::unordered_map<std::string, OpenWorkflow> workflows_;
};

/// Epoch seconds to epoch nanoseconds.
inline std::int64_t to_ns(double seconds) noexcept {
  return static_cast<std::int64_t>(seconds * 1e9 + (seconds >= 0 ? 0.5 : -0.5));
}

}  // namespace asyncflow::detail
