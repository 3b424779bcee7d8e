// The dispatcher's batch processing (pipeline.hpp).
#include "pipeline.hpp"

#include <algorithm>

#include "asyncflow/common/error.hpp"
#include "common/exception_text.hpp"
#include "event_access.hpp"

namespace asyncflow::detail {

namespace {

std::chrono::microseconds left_until(Pipeline::Clock::time_point deadline) {
  const auto left = deadline - Pipeline::Clock::now();
  return std::max(std::chrono::microseconds(0),
                  std::chrono::duration_cast<std::chrono::microseconds>(left));
}

}  // namespace

const EventTypePtr& metrics_tick() {
  static const EventTypePtr t = EventAccess::builtin("asyncflow.internal.MetricsTick");
  return t;
}

Pipeline::Pipeline(const std::string& session_id, std::shared_ptr<MetricsStore> metrics,
                   SessionRecord& record, SubscriberStage& subscribers,
                   std::shared_ptr<LossCounters> losses)
    : metrics_(std::move(metrics)),
      record_(record),
      subscribers_(subscribers),
      losses_(std::move(losses)),
      tracker_(session_id, *metrics_) {}

void Pipeline::add_exporter(std::shared_ptr<TelemetryExporter> exporter) {
  auto* events = dynamic_cast<EventExporter*>(exporter.get());
  auto* spans = dynamic_cast<SpanExporter*>(exporter.get());
  auto* metrics = dynamic_cast<MetricExporter*>(exporter.get());
  if (events == nullptr && spans == nullptr && metrics == nullptr) {
    throw Error("start_telemetry: exporter " + exporter->name() +
                " implements none of EventExporter, SpanExporter and MetricExporter");
  }
  exporters_.push_back({exporter, exporter->name()});
  const std::string* name = &exporters_.back().name;
  if (events != nullptr) event_exporters_.emplace_back(events, name);
  if (spans != nullptr) span_exporters_.emplace_back(spans, name);
  if (metrics != nullptr) metric_exporters_.emplace_back(metrics, name);
}

void Pipeline::add_processor(std::shared_ptr<SpanProcessor> processor) {
  processors_.push_back(std::move(processor));
}

void Pipeline::handle(std::vector<Event>& batch) noexcept {
  finished_.clear();
  bool snapshot = false;
  bool ticks = false;
  {
    MutexLock metrics_lock(metrics_->mutex());  // one lock per batch: readers wait at most a batch
    for (Event& e : batch) {
      if (e.event_type() == metrics_tick()) {
        snapshot = ticks = true;
        continue;
      }
      try {
        EventAccess::complete_pending(e);  // made here rather than on the engine's threads
        tracker_.process(e, finished_);
      } catch (const std::exception& ex) {
        // A malformed custom event must not stop the session; it is still exported.
        EventAccess::set_correlation(e, tracker_.trace_id(), tracker_.session_span_id());
        losses_->note_error("processing a " + e.type() + " event failed: " + ex.what());
      }
      try {
        record_.note(e);
      } catch (...) {  // NOLINT(bugprone-empty-catch): a ResourceUpdate without fields
      }
    }
  }
  if (ticks) {
    batch.erase(std::remove_if(batch.begin(), batch.end(),
                               [](const Event& e) { return e.event_type() == metrics_tick(); }),
                batch.end());
  }
  if (!batch.empty()) {
    for (const auto& [exporter, name] : event_exporters_) {
      const ExportResult r = exporter->export_events(batch);
      if (r != ExportResult::kSuccess) losses_->export_failed(*name, r, batch.size(), "event");
    }
  }
  export_spans();
  if (snapshot) export_metrics();
  processed_.fetch_add(batch.size(), std::memory_order_relaxed);
  subscribers_.deliver(batch);
}

void Pipeline::export_spans() noexcept {
  if (finished_.empty()) return;
  for (const auto& [exporter, name] : span_exporters_) {
    const ExportResult r = exporter->export_spans(finished_);
    if (r != ExportResult::kSuccess) losses_->export_failed(*name, r, finished_.size(), "span");
  }
  if (!processors_.empty()) {
    for (const SpanRecord& s : finished_) {
      try {
        const SpanData data = to_span_data(s);
        for (const auto& p : processors_) p->on_end(data);
      } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory building the SpanData
      }
    }
  }
  try {
    record_.keep(finished_);
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the spans were exported
  }
  finished_.clear();
}

void Pipeline::export_metrics() noexcept {
  if (metric_exporters_.empty()) return;
  try {
    const MetricsSnapshot snapshot = metrics_->collect();
    for (const auto& [exporter, name] : metric_exporters_) {
      const ExportResult r = exporter->export_metrics(snapshot);
      if (r != ExportResult::kSuccess) losses_->export_failed(*name, r, 1, "metric snapshot");
    }
  } catch (const std::exception& e) {
    losses_->note_error(std::string("collecting metrics failed: ") + e.what());
  }
}

void Pipeline::finish(double end_time) noexcept {
  finished_.clear();
  {
    MutexLock metrics_lock(metrics_->mutex());
    tracker_.close_all(end_time, finished_);
  }
  export_spans();
  export_metrics();
}

bool Pipeline::force_flush(Clock::time_point deadline) noexcept {
  MutexLock lock(flush_mu_);
  bool ok = true;
  for (const Exporter& e : exporters_) ok = e.exporter->force_flush(left_until(deadline)) && ok;
  for (const auto& p : processors_) ok = p->force_flush(left_until(deadline)) && ok;
  return ok;
}

void Pipeline::shutdown(Clock::time_point deadline) noexcept {
  MutexLock lock(flush_mu_);
  for (const auto& p : processors_) {
    if (!p->shutdown(left_until(deadline))) {
      losses_->note_error("a span processor did not shut down cleanly within stop_timeout");
    }
  }
  for (const Exporter& e : exporters_) {
    if (!e.exporter->shutdown(left_until(deadline))) {
      losses_->note_error("exporter " + e.name + " did not shut down cleanly");
    }
    try {
      losses_->exporter_lost(e.name, e.exporter->losses());
    } catch (...) {
      // What it lost is unknown: said, not taken for "nothing lost".
      losses_->note_error("exporter " + e.name +
                          " could not say what it lost (its losses() threw: " +
                          describe_exception(std::current_exception()).second + ")");
    }
  }
  // Released here: an exporter or processor that refers back to the session (or to an
  // engine) must not keep it alive.
  event_exporters_.clear();
  span_exporters_.clear();
  metric_exporters_.clear();
  processors_.clear();
  exporters_.clear();
}

}  // namespace asyncflow::detail
