// The read side of a session (session_record.hpp).
#include "session_record.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>

#include "asyncflow/telemetry/usage_attributes.hpp"

namespace asyncflow::detail {

namespace {

double round6(double v) {
  return std::round(v * 1e6) / 1e6;
}

std::optional<double> number_field(const Event& e, std::string_view field) {
  const FieldValue& v = e.field(field);
  if (const auto* d = std::get_if<double>(&v)) return *d;
  return std::nullopt;
}

}  // namespace

std::string python_hex(std::uint64_t id) {
  if (id == 0) return {};
  char buf[2 + 16] = {'0', 'x'};
  auto [end, ec] = std::to_chars(buf + 2, buf + sizeof buf, id, 16);
  return std::string(buf, end);
}

std::string python_hex(const TraceId& id) {
  if (!id.valid()) return {};
  if (id.high == 0) return python_hex(id.low);
  std::string out = python_hex(id.high);
  char low[16];
  auto [end, ec] = std::to_chars(low, low + sizeof low, id.low, 16);
  out.append(static_cast<std::size_t>(16 - (end - low)), '0').append(low, end);
  return out;
}

void SessionRecord::note(const Event& e) {
  if (e.event_type() == events::SessionEnded()) {
    set_ended(e.number("duration_seconds"));
    return;
  }
  if (e.event_type() != events::ResourceUpdate() || !e.node_id() ||
      e.text("resource_scope") != "per_node") {
    return;
  }
  ResourceSample r;
  r.backend = e.backend();
  r.node_id = *e.node_id();
  r.cpu_percent = number_field(e, "cpu_percent");
  r.memory_percent = number_field(e, "memory_percent");
  r.gpu_percent = number_field(e, "gpu_percent");
  r.disk_read_bytes = number_field(e, "disk_read_bytes");
  r.disk_write_bytes = number_field(e, "disk_write_bytes");
  r.net_sent_bytes = number_field(e, "net_sent_bytes");
  r.net_recv_bytes = number_field(e, "net_recv_bytes");
  std::string key = r.backend + "/" + r.node_id;
  MutexLock lock(mu_);
  resources_[std::move(key)] = std::move(r);
}

void SessionRecord::add_durations(const std::vector<SpanRecord>& spans) {
  MutexLock lock(mu_);
  for (const SpanRecord& s : spans) {
    const auto* task = std::get_if<TaskSpan>(&s);
    if (task == nullptr || task->block) continue;
    if (!task->incomplete && !task->unfinished) durations_.add(task->duration_seconds());
    if (!task->usage.empty()) add_usage(task->usage);
  }
}

void SessionRecord::add_usage(const Attributes& usage) {
  namespace names = usage_attributes;
  auto number = [](const FieldValue& v) -> std::optional<double> {
    if (const auto* d = std::get_if<double>(&v)) return *d;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
    return std::nullopt;
  };
  ++usage_.tasks;
  for (const auto& [key, value] : usage) {
    const std::optional<double> v = number(value);
    if (!v || *v < 0) continue;
    if (key == names::kCpuUserSeconds || key == names::kCpuSystemSeconds) {
      usage_.cpu_seconds += *v;
    } else if (key == names::kReadBytes) {
      usage_.read_bytes += static_cast<std::uint64_t>(*v);
    } else if (key == names::kWriteBytes) {
      usage_.write_bytes += static_cast<std::uint64_t>(*v);
    } else if (key == names::kPeakMemoryBytes) {
      const auto peak = static_cast<std::uint64_t>(*v);
      if (!usage_.max_peak_memory_bytes || peak > *usage_.max_peak_memory_bytes)
        usage_.max_peak_memory_bytes = peak;
    }
  }
}

std::optional<UsageTotals> SessionRecord::usage() const {
  MutexLock lock(mu_);
  if (usage_.tasks == 0) return std::nullopt;
  return usage_;
}

void SessionRecord::keep(std::vector<SpanRecord>& spans) {
  if (span_history_ == 0) {
    spans.clear();
    return;
  }
  MutexLock lock(mu_);
  for (SpanRecord& s : spans) {
    if (history_size_ == span_history_) {  // full: the oldest makes room
      history_at(history_oldest_) = std::move(s);
      history_oldest_ = (history_oldest_ + 1) % span_history_;
      continue;
    }
    if (history_.empty() || history_.back().size() == kHistoryBlock) {
      // The first block grows as vectors do, so a short session keeps kilobytes rather than
      // a huge page; the next ones, in a session that has shown it is long, come whole.
      auto& block = history_.emplace_back();
      block.reserve(history_.size() == 1 ? std::min(kFirstBlockReserve, span_history_)
                                         : std::min(kHistoryBlock, span_history_ - history_size_));
    }
    history_.back().push_back(std::move(s));
    ++history_size_;
  }
  spans.clear();
}

void SessionRecord::set_ended(double duration_seconds) {
  MutexLock lock(mu_);
  if (!ended_) ended_ = duration_seconds;
}

std::optional<double> SessionRecord::ended() const {
  MutexLock lock(mu_);
  return ended_;
}

std::map<std::string, ResourceSample> SessionRecord::resources() const {
  MutexLock lock(mu_);
  return resources_;
}

std::vector<SpanData> SessionRecord::traces(const std::optional<std::string>& session_id,
                                            const std::optional<std::string>& task_id) const {
  MutexLock lock(mu_);
  std::vector<SpanData> out;
  for_each_kept([&](const SpanRecord& entry) ASYNCFLOW_REQUIRES(mu_) {
    if (const auto* task = std::get_if<TaskSpan>(&entry)) {
      if (session_id && task->session_id() != *session_id) return;
      if (task_id && task->task_id != *task_id) return;
      out.push_back(to_span_data(*task));
      return;
    }
    const SpanData& s = std::get<SpanData>(entry);
    if (session_id && s.text("session_id") != *session_id) return;
    if (task_id && s.text("task_id") != *task_id) return;
    out.push_back(s);
  });
  return out;
}

std::vector<TaskSpanInfo> SessionRecord::task_spans() const {
  std::vector<TaskSpanInfo> out;
  MutexLock lock(mu_);
  for_each_kept([&](const SpanRecord& entry) ASYNCFLOW_REQUIRES(mu_) {
    const auto* s = std::get_if<TaskSpan>(&entry);
    if (s == nullptr || s->block) return;
    TaskSpanInfo t;
    t.task_id = s->task_id;
    t.backend = s->backend;
    if (s->executable != nullptr) t.executable = *s->executable;
    if (s->task_type != nullptr) t.task_type = *s->task_type;
    t.status = std::string(s->status());
    if (const std::string* workflow = s->workflow_attribute()) t.workflow_id = *workflow;
    t.duration_seconds = round6(s->duration_seconds());
    t.span_id = python_hex(s->span_id);
    t.trace_id = python_hex(s->trace_id);
    if (s->outcome == TaskSpan::Outcome::kFailed) t.error_type = s->error_type;
    t.incomplete_lifecycle = s->incomplete;
    out.push_back(std::move(t));
  });
  return out;
}

std::optional<DurationStats> SessionRecord::duration_stats() const {
  DurationStatistics d;
  {
    MutexLock lock(mu_);
    d = durations_;  // at most ~32 KiB: the percentiles are computed outside the lock
  }
  const std::optional<DurationSummary> s = d.summary();
  if (!s) return std::nullopt;
  DurationStats st;
  st.count = s->count;
  st.total_seconds = round6(s->total);
  st.mean_seconds = round6(s->mean);
  st.min_seconds = round6(s->min);
  st.max_seconds = round6(s->max);
  st.p50_seconds = round6(s->p50);
  st.p95_seconds = round6(s->p95);
  return st;
}

}  // namespace asyncflow::detail
