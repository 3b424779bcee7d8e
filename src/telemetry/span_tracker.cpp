// Internal: spans and metrics from the event stream.
#include "span_tracker.hpp"

#include <cmath>

#include "asyncflow/telemetry/manager.hpp"
#include "event_access.hpp"

namespace asyncflow::detail {

namespace {

const std::string* string_attribute(const Event& e, std::string_view key) {
  const FieldValue* v = e.attribute(key);
  return v != nullptr ? std::get_if<std::string>(v) : nullptr;
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
  kSessionStarted, kSessionEnded, kWorkflowStarted, kWorkflowEnded, kCreated, kResolved,
  kSubmitted, kQueued, kStarted, kCompleted, kFailed, kCanceled, kResource, kOther
};

namespace {

using Kind = SpanTracker::Kind;

Kind kind_of(const Event& e) {
  const EventType* t = e.event_type().get();
  // Pointer comparisons: the built-in types are singletons.
  if (t == events::TaskCreated().get()) return Kind::kCreated;
  if (t == events::TaskResolved().get()) return Kind::kResolved;
  if (t == events::TaskSubmitted().get()) return Kind::kSubmitted;
  if (t == events::TaskQueued().get()) return Kind::kQueued;
  if (t == events::TaskStarted().get()) return Kind::kStarted;
  if (t == events::TaskCompleted().get()) return Kind::kCompleted;
  if (t == events::TaskFailed().get()) return Kind::kFailed;
  if (t == events::TaskCanceled().get()) return Kind::kCanceled;
  if (t == events::ResourceUpdate().get()) return Kind::kResource;
  if (t == events::SessionStarted().get()) return Kind::kSessionStarted;
  if (t == events::SessionEnded().get()) return Kind::kSessionEnded;
  if (t == events::WorkflowStarted().get()) return Kind::kWorkflowStarted;
  if (t == events::WorkflowEnded().get()) return Kind::kWorkflowEnded;
  return Kind::kOther;
}

std::optional<double> optional_number(const Event& e, std::size_t index) {
  const FieldValue& v = e.values()[index];
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  return std::nullopt;
}

}  // namespace

SpanTracker::SpanTracker(std::string session_id, MetricsStore& metrics)
    : session_id_(std::move(session_id)), metrics_(metrics), rng_(std::random_device{}()) {
  while (!trace_id_.valid()) trace_id_ = TraceId{rng_(), rng_()};
}

std::uint64_t SpanTracker::new_span_id() {
  std::uint64_t id = 0;
  while (id == 0) id = rng_();
  return id;
}

void SpanTracker::open_session(double start_time) {
  session_ = SpanData{};
  session_.name = "session";
  session_.trace_id = trace_id_;
  session_.span_id = new_span_id();
  session_.start_ns = to_ns(start_time);
  session_.attributes = {{"session_id", session_id_}, {"backend", std::string("asyncflow")}};
  session_open_ = true;
}

std::uint64_t SpanTracker::parent_for(const std::string* workflow_id) const {
  if (workflow_id != nullptr) {
    if (auto w = workflows_.find(*workflow_id); w != workflows_.end()) return w->second.span.span_id;
    if (auto b = tasks_.find(*workflow_id); b != tasks_.end()) return b->second.span.span_id;
  }
  return session_.span_id;
}

SpanTracker::OpenTask& SpanTracker::task_span(const Event& e, const std::string& task_id) {
  auto [it, inserted] = tasks_.try_emplace(task_id);
  OpenTask& t = it->second;
  if (!inserted) return t;
  // Opened at TaskCreated; at the first lifecycle event seen for tasks created before the
  // session started.
  const std::string* wid = string_attribute(e, "asyncflow.workflow_id");
  std::string executable = attribute_or_empty(e, "executable");
  std::string task_type = attribute_or_empty(e, "task_type");
  SpanData& s = t.span;
  t.counted = task_type != "block";
  s.name = t.counted ? "task" : "block";
  s.trace_id = trace_id_;
  s.span_id = new_span_id();
  s.parent_span_id = parent_for(wid);
  if (wid != nullptr) {
    if (auto w = workflows_.find(*wid); w != workflows_.end() && w->second.span.span_id == s.parent_span_id) {
      ++w->second.members;
      t.workflow = *wid;
    }
  }
  s.start_ns = to_ns(e.event_time());
  s.attributes.reserve(7);
  s.attributes.emplace_back("session_id", session_id_);
  s.attributes.emplace_back("backend", e.backend());
  s.attributes.emplace_back("task_id", task_id);
  s.attributes.emplace_back("executable", executable);
  s.attributes.emplace_back("task_type", task_type);
  if (wid != nullptr) s.attributes.emplace_back("asyncflow.workflow_id", *wid);
  t.series = metrics_.task_series(e.backend(), executable, task_type);
  return t;
}

void SpanTracker::end_span(SpanData& span, double t, std::vector<SpanData>& finished) {
  span.end_ns = std::max(to_ns(t), span.start_ns);
  finished.push_back(std::move(span));
}

void SpanTracker::end_task(Event& e, Kind kind, const std::string& task_id,
                           std::vector<SpanData>& finished, SpanIds& ids) {
  OpenTask& t = task_span(e, task_id);
  ids = {t.span.trace_id, t.span.span_id};

  // The engine leaves duration_seconds NaN: the dispatcher, which saw TaskStarted, fills it.
  bool incomplete = false;
  double duration = 0;
  if (auto idx = e.event_type()->index_of("duration_seconds")) {
    duration = optional_number(e, *idx).value_or(0.0);
    if (std::isnan(duration)) {
      incomplete = !t.started;
      duration = incomplete ? 0.0 : std::max(e.event_time() - t.started_at, 0.0);
      EventAccess::set_value(e, *idx, duration);
      if (incomplete) set_attribute(EventAccess::attributes(e), "incomplete_lifecycle", true);
    } else if (const FieldValue* flag = e.attribute("incomplete_lifecycle")) {
      incomplete = std::holds_alternative<bool>(*flag) && std::get<bool>(*flag);
    }
  }

  MetricPoint* counter = kind == Kind::kCompleted ? t.series->completed
                         : kind == Kind::kFailed  ? t.series->failed
                                                  : t.series->canceled;
  if (t.counted) {
    MetricsStore::add(counter, 1);
    // Only a task that was counted running leaves the gauge (the reference's went negative).
    if (t.started) MetricsStore::add(t.series->running, -1);
    if (!incomplete) metrics_.record(t.series->duration, duration);
  }

  SpanData& s = t.span;
  const char* status = kind == Kind::kCompleted ? "completed" : kind == Kind::kFailed ? "failed"
                                                                                      : "canceled";
  set_attribute(s.attributes, "status", std::string(status));
  if (kind == Kind::kCompleted) {
    s.status = SpanStatus::kOk;
  } else {
    s.status = SpanStatus::kError;
    if (kind == Kind::kFailed) {
      std::string error_type = e.text("error_type");
      set_attribute(s.attributes, "error_type", error_type);
      s.status_description = std::move(error_type);
    }
  }
  if (incomplete) set_attribute(s.attributes, "incomplete_lifecycle", true);
  end_span(s, e.event_time(), finished);
  std::string workflow = std::move(t.workflow);
  tasks_.erase(task_id);
  if (!workflow.empty()) release_workflow(workflow, e.event_time(), finished);
}

void SpanTracker::release_workflow(const std::string& workflow_id, double t,
                                   std::vector<SpanData>& finished) {
  auto it = workflows_.find(workflow_id);
  if (it == workflows_.end()) return;
  OpenWorkflow& w = it->second;
  if (w.members > 0) --w.members;
  if (w.depth == 0 && w.members == 0) {
    end_span(w.span, t, finished);
    workflows_.erase(it);
  }
}

SpanIds SpanTracker::process(Event& e, std::vector<SpanData>& finished) {
  SpanIds ids{trace_id_, session_.span_id};
  const Kind kind = kind_of(e);
  switch (kind) {
    case Kind::kSessionStarted:
      return ids;
    case Kind::kSessionEnded:
      close_all(e.event_time(), finished);
      return ids;
    case Kind::kWorkflowStarted: {
      std::string wid = attribute_or_empty(e, "asyncflow.workflow_id");
      const std::string* parent = string_attribute(e, "asyncflow.parent_workflow_id");
      const std::uint64_t parent_id = parent_for(parent);
      OpenWorkflow& w = workflows_[wid];
      if (w.depth++ == 0 && w.members == 0) {
        w.span = SpanData{};
        w.span.name = "workflow";
        w.span.trace_id = trace_id_;
        w.span.span_id = new_span_id();
        w.span.parent_span_id = parent_id;
        w.span.start_ns = to_ns(e.event_time());
        w.span.attributes = {{"session_id", session_id_}, {"asyncflow.workflow_id", wid}};
      }
      return {trace_id_, w.span.span_id};
    }
    case Kind::kWorkflowEnded: {
      auto it = workflows_.find(attribute_or_empty(e, "asyncflow.workflow_id"));
      if (it == workflows_.end()) return ids;
      ids.span_id = it->second.span.span_id;
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
    default:
      break;
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
    end_task(e, kind, task_id, finished, ids);
    return ids;
  }
  OpenTask& t = task_span(e, task_id);
  switch (kind) {
    case Kind::kSubmitted:
      if (e.backend() != t.span.text("backend")) {
        // The real backend is known now (a task created before routing).
        set_attribute(t.span.attributes, "backend", e.backend());
        t.series = metrics_.task_series(e.backend(), std::string(t.span.text("executable")),
                                        std::string(t.span.text("task_type")));
      }
      if (t.counted) MetricsStore::add(t.series->submitted, 1);
      break;
    case Kind::kQueued:
      t.span.events.push_back(
          SpanEvent{"TaskQueued", to_ns(e.event_time()), {{"task_id", task_id}}});
      break;
    case Kind::kStarted:
      if (!t.started) {
        t.started = true;
        t.started_at = e.event_time();
        if (t.counted) {
          MetricsStore::add(t.series->started, 1);
          MetricsStore::add(t.series->running, 1);
        }
      }
      break;
    default:
      break;
  }
  return {t.span.trace_id, t.span.span_id};
}

void SpanTracker::close_all(double end_time, std::vector<SpanData>& finished) {
  for (auto& [id, t] : tasks_) {
    set_attribute(t.span.attributes, "asyncflow.unfinished", true);
    if (t.started && t.counted) MetricsStore::add(t.series->running, -1);
    end_span(t.span, end_time, finished);
  }
  tasks_.clear();
  for (auto& [id, w] : workflows_) end_span(w.span, end_time, finished);
  workflows_.clear();
  if (session_open_) {
    session_open_ = false;
    end_span(session_, end_time, finished);
  }
}

}  // namespace asyncflow::detail
