// The dispatcher's batch processing (pipeline.hpp).
#include "pipeline.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "asyncflow/common/error.hpp"
#include "common/exception_text.hpp"
#include "common/time_left.hpp"
#include "event_access.hpp"

namespace asyncflow::detail {

const EventTypePtr& metrics_tick() {
  static const EventTypePtr t = EventAccess::builtin("asyncflow.internal.MetricsTick");
  return t;
}

Pipeline::Pipeline(const std::string& session_id, std::shared_ptr<MetricsStore> metrics,
                   SessionRecord& record, SubscriberStage& subscribers,
                   std::shared_ptr<LossCounters> losses, const SessionTrace& trace)
    : metrics_(std::move(metrics)),
      record_(record),
      subscribers_(subscribers),
      losses_(std::move(losses)),
      tracker_(session_id, *metrics_, trace) {
  processors_target_.name = "the span processors";
}

void Pipeline::add_exporter(std::shared_ptr<TelemetryExporter> exporter) {
  auto* events = dynamic_cast<EventExporter*>(exporter.get());
  auto* spans = dynamic_cast<SpanExporter*>(exporter.get());
  auto* metrics = dynamic_cast<MetricExporter*>(exporter.get());
  if (events == nullptr && spans == nullptr && metrics == nullptr) {
    throw Error("start_telemetry: exporter " + exporter->name() +
                " implements none of EventExporter, SpanExporter and MetricExporter");
  }
  std::string name = exporter->name();  // may throw: before anything is added
  Target& t = exporters_.emplace_back();
  t.name = std::move(name);
  t.exporter = std::move(exporter);
  if (events != nullptr) event_exporters_.emplace_back(events, &t);
  if (spans != nullptr) span_exporters_.emplace_back(spans, &t);
  if (metrics != nullptr) metric_exporters_.emplace_back(metrics, &t);
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
  // Processed: in the metrics, spans and record. What the exports lose is counted apart.
  processed_.fetch_add(batch.size(), std::memory_order_relaxed);
  try {
    record_.add_durations(finished_);
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory
  }
  std::optional<MetricsSnapshot> metric_snapshot;
  if (snapshot) metric_snapshot = collect_snapshot();
  // Decided once: a subscribe() in between must not change the steps under the plan.
  const bool to_subscribers = !batch.empty() && subscribers_.has_subscribers();
  if (!plan(batch.size(), finished_.size(), metric_snapshot.has_value(), to_subscribers)) return;
  // The calls in the order plan() listed them.
  std::size_t step = 0;
  auto call = [&](Target& t, auto&& f) {
    if (!begin_step(step++)) return false;
    MutexLock lock(t.call_mu);
    if (!t.closed) f();  // closed: shut down after abandon(), which counted this call
    return true;
  };
  if (!batch.empty()) {
    for (const auto& [exporter, target] : event_exporters_) {
      if (!call(*target, [&, e = exporter, t = target] {
            const ExportResult r = e->export_events(batch);
            if (r != ExportResult::kSuccess)
              losses_->export_failed(t->name, r, batch.size(), "event");
          })) {
        return;
      }
    }
  }
  if (!finished_.empty()) {
    for (const auto& [exporter, target] : span_exporters_) {
      if (!call(*target, [&, e = exporter, t = target] { send_spans(*e, *t, finished_); })) {
        return;
      }
    }
    if (!processors_.empty() && !call(processors_target_, [&] { feed_processors(finished_); })) {
      return;
    }
    try {
      record_.keep(finished_);
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the spans were exported
    }
    finished_.clear();
  }
  if (metric_snapshot) {
    for (const auto& [exporter, target] : metric_exporters_) {
      if (!call(*target,
                [&, e = exporter, t = target] { send_metrics(*e, *t, *metric_snapshot); })) {
        return;
      }
    }
  }
  if (to_subscribers) {
    if (!begin_step(step++, /*hand_over=*/true)) return;
    subscribers_.deliver(batch);
  }
  end_batch();
}

bool Pipeline::plan(std::size_t events, std::size_t spans, bool snapshot,
                    bool to_subscribers) noexcept {
  MutexLock lock(progress_mu_);
  steps_.clear();
  try {
    if (events != 0) {
      for (const auto& [e, t] : event_exporters_) steps_.push_back({t, "event", events});
    }
    if (spans != 0) {
      for (const auto& [e, t] : span_exporters_) steps_.push_back({t, "span", spans});
      if (!processors_.empty()) steps_.push_back({&processors_target_, "span", spans});
    }
    if (snapshot) {
      for (const auto& [e, t] : metric_exporters_) steps_.push_back({t, "metric snapshot", 1});
    }
    if (to_subscribers) steps_.push_back({nullptr, "event", events});
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; abandon() then counts less
  }
  if (abandoned_) {
    count_unfinished(0);
    steps_.clear();
    return false;
  }
  planned_ = true;
  begun_ = 0;
  return true;
}

bool Pipeline::begin_step(std::size_t i, bool hand_over) noexcept {
  MutexLock lock(progress_mu_);
  if (abandoned_) return false;
  begun_ = i + 1;
  if (hand_over) ++hand_overs_begun_;
  return true;
}

void Pipeline::end_batch() noexcept {
  MutexLock lock(progress_mu_);
  planned_ = false;
}

void Pipeline::abandon(double stop_timeout) noexcept {
  MutexLock lock(progress_mu_);
  if (abandoned_) return;
  abandoned_ = true;
  stop_timeout_ = stop_timeout;
  // Not planned: between batches, or before plan(), which then counts the batch itself.
  if (planned_) count_unfinished(begun_);
}

void Pipeline::count_unfinished(std::size_t begun) noexcept {
  const Step* in_progress = begun > 0 && begun <= steps_.size() ? &steps_[begun - 1] : nullptr;
  const bool in_call = in_progress != nullptr && in_progress->target != nullptr;
  const bool in_hand_over = in_progress != nullptr && in_progress->target == nullptr;
  std::string why;
  try {
    why = "stop_timeout (" + seconds_text(stop_timeout_) + ") ran out ";
    if (in_call) {
      why += "while a call of " + in_progress->target->name +
             " was still running; its thread is left to finish that call";
    } else if (in_hand_over) {
      why += "while the subscribers were behind";
    } else {
      why += "before the telemetry thread got there";
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the counts still tell
  }
  // The call in progress counts as failed: it did not return in time.
  if (in_call) {
    losses_->not_exported(in_progress->target->name, in_progress->records, in_progress->what, why,
                          true);
  }
  // A hand-over in progress: counted here unless the subscribers' stage has its outcome in.
  if (in_hand_over && subscribers_.refuse_hand_overs() < hand_overs_begun_) {
    losses_->undelivered(in_progress->records, why);
  }
  for (std::size_t i = begun; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    if (s.target == nullptr) {
      losses_->undelivered(s.records, why);
    } else {
      losses_->not_exported(s.target->name, s.records, s.what, why, false);
    }
  }
}

void Pipeline::export_at_stop(std::vector<SpanRecord>& spans,
                              const MetricsSnapshot* snapshot) noexcept {
  // try_lock: after abandon() a target may still be in the dispatcher's call.
  auto call = [&](Target& t, std::uint64_t records, const char* what, auto&& f) {
    if (t.call_mu.try_lock()) {
      const bool open = !t.closed;
      if (open) f();
      t.call_mu.unlock();
      if (open) return;
    }
    losses_->not_exported(t.name, records, what, "it was still in a call when the session stopped",
                          false);
  };
  if (!spans.empty()) {
    for (const auto& [exporter, target] : span_exporters_) {
      call(*target, spans.size(), "span",
           [&, e = exporter, t = target] { send_spans(*e, *t, spans); });
    }
    if (!processors_.empty()) {
      call(processors_target_, spans.size(), "span", [&] { feed_processors(spans); });
    }
  }
  if (snapshot != nullptr) {
    for (const auto& [exporter, target] : metric_exporters_) {
      call(*target, 1, "metric snapshot",
           [&, e = exporter, t = target] { send_metrics(*e, *t, *snapshot); });
    }
  }
}

void Pipeline::send_spans(SpanExporter& exporter, const Target& target,
                          const std::vector<SpanRecord>& spans) noexcept {
  const ExportResult r = exporter.export_spans(spans);
  if (r != ExportResult::kSuccess) losses_->export_failed(target.name, r, spans.size(), "span");
}

void Pipeline::send_metrics(MetricExporter& exporter, const Target& target,
                            const MetricsSnapshot& snapshot) noexcept {
  const ExportResult r = exporter.export_metrics(snapshot);
  if (r != ExportResult::kSuccess) losses_->export_failed(target.name, r, 1, "metric snapshot");
}

void Pipeline::feed_processors(const std::vector<SpanRecord>& spans) noexcept {
  for (const SpanRecord& s : spans) {
    try {
      const SpanData data = to_span_data(s);
      for (const auto& p : processors_) p->on_end(data);
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory building the SpanData
    }
  }
}

std::optional<MetricsSnapshot> Pipeline::collect_snapshot() noexcept {
  if (metric_exporters_.empty()) return std::nullopt;
  try {
    return metrics_->collect();
  } catch (const std::exception& e) {
    losses_->note_error(std::string("collecting metrics failed: ") + e.what());
  }
  return std::nullopt;
}

void Pipeline::finish(double end_time) noexcept {
  // A vector of our own: after abandon(), finished_ may still be the dispatcher's.
  std::vector<SpanRecord> spans;
  try {
    {
      MutexLock metrics_lock(metrics_->mutex());
      tracker_.close_all(end_time, spans);
    }
    record_.add_durations(spans);
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory
  }
  const std::optional<MetricsSnapshot> snapshot = collect_snapshot();
  export_at_stop(spans, snapshot ? &*snapshot : nullptr);
  try {
    record_.keep(spans);
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the spans were exported
  }
}

bool Pipeline::force_flush(Clock::time_point deadline) noexcept {
  MutexLock lock(flush_mu_);
  bool ok = true;
  for (const Target& e : exporters_)
    ok = e.exporter->force_flush(time_left<std::chrono::microseconds>(deadline)) && ok;
  for (const auto& p : processors_)
    ok = p->force_flush(time_left<std::chrono::microseconds>(deadline)) && ok;
  return ok;
}

void Pipeline::shutdown(Clock::time_point deadline) noexcept {
  MutexLock lock(flush_mu_);
  auto still_in_call = [&](const Target& t) {
    losses_->note_error(t.name + " " + (t.exporter ? "was" : "were") +
                        " still in a call when the session stopped: not shut down, and what " +
                        (t.exporter ? "it holds" : "they hold") + " may be lost");
  };
  if (!processors_.empty()) {
    Target& t = processors_target_;
    if (!t.call_mu.try_lock()) {
      still_in_call(t);
    } else {
      if (!t.closed) {
        t.closed = true;
        for (const auto& p : processors_) {
          if (!p->shutdown(time_left<std::chrono::microseconds>(deadline))) {
            losses_->note_error("a span processor did not shut down cleanly within stop_timeout");
          }
          // What it dropped (a full queue, failed exports) is the session's loss too.
          const SpanLosses lost = p->losses();
          if (lost.spans != 0) {
            losses_->exporter_lost("span processor", ExporterLosses{lost.spans, lost.last_error});
          }
        }
      }
      t.call_mu.unlock();
    }
  }
  for (Target& e : exporters_) {
    if (!e.call_mu.try_lock()) {
      still_in_call(e);
      continue;
    }
    const bool was_closed = std::exchange(e.closed, true);
    e.call_mu.unlock();  // closed: the dispatcher calls it no more, shutdown needs no lock
    if (was_closed) continue;
    if (!e.exporter->shutdown(time_left<std::chrono::microseconds>(deadline))) {
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
  {
    // An abandoned dispatcher may still read the lists; they go with the pipeline then.
    MutexLock progress(progress_mu_);
    if (abandoned_) return;
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
