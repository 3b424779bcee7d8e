// Internal: spans and metrics from the event stream.
#include "span_tracker.hpp"

#include <array>
#include <cmath>

#include "asyncflow/telemetry/usage_attributes.hpp"
#include "common/random.hpp"
#include "event_access.hpp"

namespace asyncflow::detail {

namespace {

const std::string* string_attribute(const Event& e, std::string_view key) {
  return e.context() ? e.context()->string_attribute(key) : nullptr;
}

/// The measured usage on a terminal event (its "usage.*" attributes), appended to `out`.
void copy_usage(const Event& e, Attributes& out) {
  for (const auto& attribute : e.attributes()) {
    if (attribute.first.starts_with(usage_attributes::kPrefix)) out.push_back(attribute);
  }
}

std::string attribute_or_empty(const Event& e, std::string_view key) {
  const std::string* s = string_attribute(e, key);
  return s != nullptr ? *s : std::string();
}

void set_attribute(Attributes& attrs, std::string_view key, FieldValue v) {
  for (auto& [k, old] : attrs) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  attrs.emplace_back(std::string(key), std::move(v));
}

}  // namespace

enum class SpanTracker::Kind : std::uint8_t {
  kSessionStarted,
  kSessionEnded,
  kWorkflowStarted,
  kWorkflowEnded,
  kCreated,
  kResolved,
  kSubmitted,
  kQueued,
  kStarted,
  kCompleted,
  kFailed,
  kCanceled,
  kResource,
  kOther
};

namespace {

using Kind = SpanTracker::Kind;

Kind kind_of(const Event& e) {
  struct Entry {
    const EventType* type;
    Kind kind;
  };
  // The built-in types are singletons, so a pointer identifies each; looked up once.
  static const std::array<Entry, 13> kTable = {{
      {events::TaskCreated().get(), Kind::kCreated},
      {events::TaskResolved().get(), Kind::kResolved},
      {events::TaskSubmitted().get(), Kind::kSubmitted},
      {events::TaskQueued().get(), Kind::kQueued},
      {events::TaskStarted().get(), Kind::kStarted},
      {events::TaskCompleted().get(), Kind::kCompleted},
      {events::TaskFailed().get(), Kind::kFailed},
      {events::TaskCanceled().get(), Kind::kCanceled},
      {events::ResourceUpdate().get(), Kind::kResource},
      {events::SessionStarted().get(), Kind::kSessionStarted},
      {events::SessionEnded().get(), Kind::kSessionEnded},
      {events::WorkflowStarted().get(), Kind::kWorkflowStarted},
      {events::WorkflowEnded().get(), Kind::kWorkflowEnded},
  }};
  const EventType* t = e.event_type().get();
  for (const auto& [type, kind] : kTable) {
    if (t == type) return kind;
  }
  return Kind::kOther;
}

std::optional<double> optional_number(const Event& e, std::size_t index) {
  const FieldValue& v = e.values()[index];
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  return std::nullopt;
}

}  // namespace

SpanTracker::SpanTracker(std::string session_id, MetricsStore& metrics, const SessionTrace& trace)
    : session_id_(std::move(session_id)), metrics_(metrics), trace_(trace) {}

std::uint64_t SpanTracker::new_span_id() {
  std::uint64_t id = 0;
  while (id == 0) id = random_u64();
  return id;
}

void SpanTracker::open_session(double start_time) {
  session_ = SpanData{};
  session_.name = "session";
  session_.trace_id = trace_.trace_id;
  session_.span_id = new_span_id();
  session_.parent_span_id = trace_.remote_parent;  // the caller's span (TRACEPARENT), or root
  session_.start_ns = to_ns(start_time);
  session_.attributes = {{"session_id", session_id_}, {"backend", std::string("asyncflow")}};
  session_open_ = true;
}

std::uint64_t SpanTracker::parent_for(const std::string* workflow_id) const {
  if (workflow_id != nullptr) {
    if (auto w = workflows_.find(*workflow_id); w != workflows_.end())
      return w->second.span.span_id;
    if (auto b = tasks_.find(*workflow_id); b != tasks_.end()) return b->second.span.span_id;
  }
  return session_.span_id;
}

const TaskSeries* SpanTracker::series_of(const TaskSpan& s) {
  static const std::string kNone;
  return metrics_.task_series(s.backend, s.executable ? *s.executable : kNone,
                              s.task_type ? *s.task_type : kNone);
}

SpanTracker::OpenTask& SpanTracker::task_span(const Event& e, const std::string& task_id) {
  // A task's events mostly arrive one after another: the last task found is tried first.
  if (last_task_ != nullptr && last_task_id_ == task_id) return *last_task_;
  auto [it, inserted] = tasks_.try_emplace(task_id);
  OpenTask& t = it->second;  // elements of an unordered_map stay put when it grows
  last_task_ = &t;
  last_task_id_ = task_id;
  if (!inserted) return t;
  // Opened at TaskCreated; at the first lifecycle event seen for tasks created before the
  // session started. The span keeps the event's context, so its strings are not copied.
  TaskSpan& s = t.span;
  s.context = e.context();
  if (s.context == nullptr || s.context != last_context_.context) {
    // Tasks of one factory and group share a context: its attributes are looked up once.
    last_context_.context = s.context;
    last_context_.executable = string_attribute(e, "executable");
    last_context_.task_type = string_attribute(e, "task_type");
    last_context_.workflow_id = string_attribute(e, "asyncflow.workflow_id");
    last_context_.series = nullptr;
  }
  s.executable = last_context_.executable;
  s.task_type = last_context_.task_type;
  s.workflow_id = last_context_.workflow_id;
  s.block = s.task_type != nullptr && *s.task_type == "block";
  s.task_id = task_id;
  s.backend = e.backend();
  s.trace_id = trace_.trace_id;
  // Known to the engine too: it gives the task's programs TRACEPARENT before we see the task.
  s.span_id = trace_.task_span_id(task_id);
  s.parent_span_id = parent_for(s.workflow_id);
  if (s.workflow_id != nullptr) {
    if (auto w = workflows_.find(*s.workflow_id);
        w != workflows_.end() && w->second.span.span_id == s.parent_span_id) {
      ++w->second.members;
      t.in_workflow = true;
    }
  }
  s.start_ns = to_ns(e.event_time());
  // The context's backend, unless a TaskSubmitted changed the span's since.
  if (last_context_.series == nullptr || last_context_.backend != s.backend) {
    last_context_.series = series_of(s);
    last_context_.backend = s.backend;
  }
  t.series = last_context_.series;
  return t;
}

void SpanTracker::end_span(SpanData& span, double t, std::vector<SpanRecord>& finished) {
  span.end_ns = std::max(to_ns(t), span.start_ns);
  finished.emplace_back(std::move(span));
}

std::pair<TraceId, std::uint64_t> SpanTracker::end_task(Event& e, Kind kind,
                                                        const std::string& task_id,
                                                        std::vector<SpanRecord>& finished) {
  OpenTask& t = task_span(e, task_id);
  const std::pair<TraceId, std::uint64_t> ids{t.span.trace_id, t.span.span_id};

  // The engine leaves duration_seconds NaN: the dispatcher, which saw TaskStarted, fills it.
  // The three terminal types are built-ins whose first field is duration_seconds (checked
  // in event_test.cpp): no lookup by name per event.
  constexpr std::size_t kDuration = 0;
  bool incomplete = false;
  double duration = optional_number(e, kDuration).value_or(0.0);
  if (std::isnan(duration)) {
    incomplete = !t.started;
    duration = incomplete ? 0.0 : std::max(e.event_time() - t.started_at, 0.0);
    EventAccess::set_value(e, kDuration, duration);
    if (incomplete) set_attribute(EventAccess::attributes(e), "incomplete_lifecycle", true);
  } else if (const FieldValue* flag = e.attribute("incomplete_lifecycle")) {
    incomplete = std::holds_alternative<bool>(*flag) && std::get<bool>(*flag);
  }

  MetricPoint* counter = kind == Kind::kCompleted ? t.series->completed
                         : kind == Kind::kFailed  ? t.series->failed
                                                  : t.series->canceled;
  if (!t.span.block) {  // blocks run in the engine, not on a backend: no task metrics
    // A task that ends without reaching a backend (a failed dependency, a cancel, shutdown)
    // still left the graph: counting it keeps submitted = completed + failed + canceled +
    // running, as the reference's summary reads.
    if (!t.submitted) MetricsStore::add(t.series->submitted, 1);
    MetricsStore::add(counter, 1);
    // Only a task that was counted running leaves the gauge (the reference's went negative).
    if (t.started) MetricsStore::add(t.series->running, -1);
    if (!incomplete) metrics_.record(t.series->duration, duration);
  }

  TaskSpan& s = t.span;
  s.outcome = kind == Kind::kCompleted ? TaskSpan::Outcome::kCompleted
              : kind == Kind::kFailed  ? TaskSpan::Outcome::kFailed
                                       : TaskSpan::Outcome::kCanceled;
  if (kind == Kind::kFailed) s.error_type = e.text("error_type");
  if (kind != Kind::kCanceled) copy_usage(e, s.usage);
  s.incomplete = incomplete;
  s.end_ns = std::max(to_ns(e.event_time()), s.start_ns);
  // The id string lives in the context, which the finished span keeps alive.
  const std::string* workflow = t.in_workflow ? s.workflow_id : nullptr;
  finished.emplace_back(std::move(s));
  if (last_task_ == &t) last_task_ = nullptr;
  tasks_.erase(task_id);
  if (workflow != nullptr) release_workflow(*workflow, e.event_time(), finished);
  return ids;
}

void SpanTracker::release_workflow(const std::string& workflow_id, double t,
                                   std::vector<SpanRecord>& finished) {
  auto it = workflows_.find(workflow_id);
  if (it == workflows_.end()) return;
  OpenWorkflow& w = it->second;
  if (w.members > 0) --w.members;
  if (w.depth == 0 && w.members == 0) {
    end_span(w.span, t, finished);
    workflows_.erase(it);
  }
}

void SpanTracker::process(Event& e, std::vector<SpanRecord>& finished) {
  const auto [trace_id, span_id] = apply(e, finished);
  EventAccess::set_correlation(e, trace_id, span_id);
}

std::pair<TraceId, std::uint64_t> SpanTracker::apply(Event& e, std::vector<SpanRecord>& finished) {
  std::pair<TraceId, std::uint64_t> ids{trace_.trace_id, session_.span_id};
  const Kind kind = kind_of(e);
  switch (kind) {
    case Kind::kSessionStarted: return ids;
    case Kind::kSessionEnded: close_all(e.event_time(), finished); return ids;
    case Kind::kWorkflowStarted: {
      std::string wid = attribute_or_empty(e, "asyncflow.workflow_id");
      const std::string* parent = string_attribute(e, "asyncflow.parent_workflow_id");
      const std::uint64_t parent_id = parent_for(parent);
      OpenWorkflow& w = workflows_[wid];
      if (w.depth++ == 0 && w.members == 0) {
        w.span = SpanData{};
        w.span.name = "workflow";
        w.span.trace_id = trace_.trace_id;
        w.span.span_id = new_span_id();
        w.span.parent_span_id = parent_id;
        w.span.start_ns = to_ns(e.event_time());
        w.span.attributes = {{"session_id", session_id_}, {"asyncflow.workflow_id", wid}};
      }
      return {trace_.trace_id, w.span.span_id};
    }
    case Kind::kWorkflowEnded: {
      auto it = workflows_.find(attribute_or_empty(e, "asyncflow.workflow_id"));
      if (it == workflows_.end()) return ids;
      ids.second = it->second.span.span_id;
      if (it->second.depth > 0) --it->second.depth;
      if (it->second.depth == 0 && it->second.members == 0) {
        end_span(it->second.span, e.event_time(), finished);
        workflows_.erase(it);
      }
      return ids;
    }
    case Kind::kResource:
      if (std::get<std::string>(e.field("resource_scope")) == "per_node" && e.node_id()) {
        const Attributes attrs = {{"backend", e.backend()}, {"node_id", *e.node_id()}};
        const EventType& type = *e.event_type();
        if (auto v = optional_number(e, *type.index_of("cpu_percent")))
          metrics_.set(Instrument::kNodeCpu, attrs, *v);
        if (auto v = optional_number(e, *type.index_of("memory_percent")))
          metrics_.set(Instrument::kNodeMemory, attrs, *v);
        if (auto v = optional_number(e, *type.index_of("gpu_percent")))
          metrics_.set(Instrument::kNodeGpu, attrs, *v);
      }
      return ids;
    default: break;
  }

  if (!e.task_id()) return ids;  // a custom event about the session
  const std::string& task_id = *e.task_id();
  if (kind == Kind::kOther) {
    // A custom event about a task: its span while open, else the session span.
    if (auto it = tasks_.find(task_id); it != tasks_.end())
      return {it->second.span.trace_id, it->second.span.span_id};
    return ids;
  }
  if (kind == Kind::kCompleted || kind == Kind::kFailed || kind == Kind::kCanceled) {
    return end_task(e, kind, task_id, finished);
  }
  OpenTask& t = task_span(e, task_id);
  switch (kind) {
    case Kind::kSubmitted:
      if (e.backend() != t.span.backend) {
        // The real backend is known now (a task created before routing).
        t.span.backend = e.backend();
        t.series = series_of(t.span);
      }
      if (!t.span.block) MetricsStore::add(t.series->submitted, 1);
      t.submitted = true;
      break;
    case Kind::kResolved:
      if (t.span.resolved_ns < 0) t.span.resolved_ns = to_ns(e.event_time());
      break;
    case Kind::kQueued:
      if (t.span.queued_ns < 0) t.span.queued_ns = to_ns(e.event_time());
      break;
    case Kind::kStarted:
      if (!t.started) {
        t.started = true;
        t.started_at = e.event_time();
        t.span.started_ns = to_ns(t.started_at);
        if (!t.span.block) {
          MetricsStore::add(t.series->started, 1);
          MetricsStore::add(t.series->running, 1);
        }
      }
      break;
    default: break;
  }
  return {t.span.trace_id, t.span.span_id};
}

void SpanTracker::close_all(double end_time, std::vector<SpanRecord>& finished) {
  for (auto& [id, t] : tasks_) {
    t.span.unfinished = true;
    if (t.started && !t.span.block) MetricsStore::add(t.series->running, -1);
    t.span.end_ns = std::max(to_ns(end_time), t.span.start_ns);
    finished.emplace_back(std::move(t.span));
  }
  tasks_.clear();
  last_task_ = nullptr;
  for (auto& [id, w] : workflows_) end_span(w.span, end_time, finished);
  workflows_.clear();
  if (session_open_) {
    session_open_ = false;
    end_span(session_, end_time, finished);
  }
}

}  // namespace asyncflow::detail
