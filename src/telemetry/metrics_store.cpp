// Internal: metric instruments and their series.
#include "metrics_store.hpp"

#include <algorithm>

#include "losses.hpp"

namespace asyncflow::detail {

namespace {

// Bucket bounds in seconds for task durations: the reference used the SDK defaults (0, 5,
// 10, … 10000), which put every task shorter than 5 s into one bucket.
const std::vector<double> kDurationBounds = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,  0.25,
                                             0.5,   1,     2.5,  5,     10,   25,   50,
                                             100,   250,   500,  1000,  2500, 5000, 10000};

struct InstrumentSpec {
  const char* name;
  const char* description;
  const char* unit;
  InstrumentKind kind;
};

// Names and descriptions as the reference (§4.3); units added (the reference set none).
constexpr InstrumentSpec kSpecs[] = {
    {"tasks_submitted", "Total tasks submitted", "{task}", InstrumentKind::kCounter},
    {"tasks_started", "Total tasks started", "{task}", InstrumentKind::kCounter},
    {"tasks_completed", "Total tasks completed", "{task}", InstrumentKind::kCounter},
    {"tasks_failed", "Total tasks failed", "{task}", InstrumentKind::kCounter},
    {"tasks_canceled", "Total tasks canceled", "{task}", InstrumentKind::kCounter},
    {"tasks_running", "Tasks currently running", "{task}", InstrumentKind::kUpDownCounter},
    {"task_duration_seconds", "Task execution duration in seconds", "s",
     InstrumentKind::kHistogram},
    {"node_cpu_utilization", "Node CPU utilization percent", "%", InstrumentKind::kGauge},
    {"node_memory_utilization", "Node memory utilization percent", "%", InstrumentKind::kGauge},
    {"node_gpu_utilization", "Node GPU utilization percent", "%", InstrumentKind::kGauge},
    {"telemetry_events_dropped",
     "Telemetry events lost (full bus, emitted after stop, or not "
     "drained at stop)",
     "{event}", InstrumentKind::kCounter},
    {"telemetry_events_undelivered", "Telemetry events the subscribers never got (stop timeout)",
     "{event}", InstrumentKind::kCounter},
    {"telemetry_records_not_exported",
     "Events, spans and metric snapshots an exporter did not "
     "take or lost (failed export or write)",
     "{record}", InstrumentKind::kCounter},
    {"telemetry_subscriber_errors", "Exceptions thrown by telemetry subscribers", "{error}",
     InstrumentKind::kCounter},
};
static_assert(std::size(kSpecs) == static_cast<std::size_t>(Instrument::kCount));

void append_key_part(std::string& key, const FieldValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    key += *s;
  } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
    key += std::to_string(*i);
  } else if (const auto* d = std::get_if<double>(&v)) {
    key += std::to_string(*d);
  } else if (const auto* b = std::get_if<bool>(&v)) {
    key += *b ? "true" : "false";
  }
  key += '\x1f';
}

}  // namespace

MetricsStore::MetricsStore(std::string session_id, std::int64_t start_ns)
    : session_id_(std::move(session_id)), start_ns_(start_ns) {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    MetricData& m = slots_[i].meta;
    m.name = kSpecs[i].name;
    m.description = kSpecs[i].description;
    m.unit = kSpecs[i].unit;
    m.kind = kSpecs[i].kind;
    if (m.kind == InstrumentKind::kHistogram) m.bounds = kDurationBounds;
  }
}

void MetricsStore::set_losses(std::shared_ptr<const LossCounters> losses) {
  MutexLock lock(mu_);
  losses_ = std::move(losses);
}

MetricPoint& MetricsStore::series(Instrument instrument, const Attributes& attributes) {
  std::string key;
  for (const auto& [k, v] : attributes) append_key_part(key, v);
  Slot& slot = slots_[static_cast<std::size_t>(instrument)];
  auto it = slot.series.find(key);
  if (it != slot.series.end()) return it->second;
  MetricPoint& p = slot.series[std::move(key)];
  p.attributes.reserve(attributes.size() + 1);
  p.attributes.emplace_back("session_id", session_id_);
  p.attributes.insert(p.attributes.end(), attributes.begin(), attributes.end());
  if (slot.meta.kind == InstrumentKind::kHistogram)
    p.bucket_counts.assign(slot.meta.bounds.size() + 1, 0);
  return p;
}

const TaskSeries* MetricsStore::task_series(const std::string& backend,
                                            const std::string& executable,
                                            const std::string& task_type) {
  // Built in a reused buffer: this runs for every task, and consecutive tasks mostly come
  // from one factory (the last lookup is kept).
  key_.clear();
  key_.append(backend).append(1, '\x1f').append(executable).append(1, '\x1f').append(task_type);
  if (last_ != nullptr && key_ == last_key_) return last_;
  auto [it, inserted] = task_series_.try_emplace(key_);
  if (inserted) {
    const Attributes attrs = {
        {"backend", backend}, {"executable", executable}, {"task_type", task_type}};
    TaskSeries& t = it->second;
    t.submitted = &series(Instrument::kTasksSubmitted, {{"backend", backend}});
    t.started = &series(Instrument::kTasksStarted, attrs);
    t.completed = &series(Instrument::kTasksCompleted, attrs);
    t.failed = &series(Instrument::kTasksFailed, attrs);
    t.canceled = &series(Instrument::kTasksCanceled, attrs);
    t.running = &series(Instrument::kTasksRunning, attrs);
    t.duration = &series(Instrument::kTaskDuration, attrs);
  }
  last_key_ = key_;
  last_ = &it->second;
  return last_;
}

void MetricsStore::set(Instrument instrument, const Attributes& attributes, double value) {
  series(instrument, attributes).value = value;
}

void MetricsStore::record(MetricPoint* point, double value) noexcept {
  MetricPoint& p = *point;
  const auto& bounds = slots_[static_cast<std::size_t>(Instrument::kTaskDuration)].meta.bounds;
  // OTel explicit buckets: bucket i holds (bounds[i-1], bounds[i]].
  auto idx = static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) -
                                      bounds.begin());
  ++p.bucket_counts[idx];
  p.min = p.count == 0 ? value : std::min(p.min, value);
  p.max = p.count == 0 ? value : std::max(p.max, value);
  ++p.count;
  p.sum += value;
}

double MetricsStore::total(Instrument instrument) const {
  MutexLock lock(mu_);
  double sum = 0;
  for (const auto& [key, p] : slots_[static_cast<std::size_t>(instrument)].series) sum += p.value;
  return sum;
}

std::optional<std::uint64_t> MetricsStore::loss_count(Instrument instrument) const {
  const TelemetryLosses l = losses_ ? losses_->snapshot() : TelemetryLosses{};
  switch (instrument) {
    case Instrument::kEventsDropped: return l.events_dropped;
    case Instrument::kEventsUndelivered: return l.events_undelivered;
    case Instrument::kRecordsNotExported: return l.records_not_exported;
    case Instrument::kSubscriberErrors: return l.subscriber_errors;
    default: return std::nullopt;
  }
}

MetricsSnapshot MetricsStore::collect() const {
  MutexLock lock(mu_);
  MetricsSnapshot snap;
  snap.start_ns = start_ns_;
  snap.time_ns = static_cast<std::int64_t>(epoch_seconds() * 1e9);
  snap.metrics.reserve(slots_.size());
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    MetricData m = slots_[i].meta;
    if (auto loss = loss_count(static_cast<Instrument>(i))) {
      // Always reported (0 is informative): one series per session.
      MetricPoint p;
      p.attributes.emplace_back("session_id", session_id_);
      p.value = static_cast<double>(*loss);
      m.points.push_back(std::move(p));
    } else {
      m.points.reserve(slots_[i].series.size());
      for (const auto& [key, p] : slots_[i].series) m.points.push_back(p);
    }
    snap.metrics.push_back(std::move(m));
  }
  return snap;
}

}  // namespace asyncflow::detail
