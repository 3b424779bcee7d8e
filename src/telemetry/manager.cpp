// TelemetryManager: the session's lifecycle (start, stop), emit() and flush(), and the read
// side's entry points. The work per batch is in pipeline.cpp, the subscribers' thread in
// subscribers.cpp, what is kept for reading in session_record.cpp, losses in losses.cpp.
#include "asyncflow/telemetry/manager.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "asyncflow/common/error.hpp"
#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/event_bus.hpp"
#include "asyncflow/telemetry/log.hpp"
#include "asyncflow/telemetry/resource_poller.hpp"
#include "asyncflow/telemetry/trace_context.hpp"
#include "common/cache_line.hpp"
#include "common/time_left.hpp"
#include "event_access.hpp"
#include "losses.hpp"
#include "metrics_store.hpp"
#include "pipeline.hpp"
#include "session_record.hpp"
#include "subscribers.hpp"

namespace asyncflow {

namespace {

using Clock = std::chrono::steady_clock;

std::atomic<CheckpointExporterFactory> g_checkpoint_factory{nullptr};

void check_options(const TelemetryOptions& o) {
  if (!(o.resource_poll_interval >= 0) || !std::isfinite(o.resource_poll_interval)) {
    throw Error(
        "start_telemetry: resource_poll_interval must be a number of seconds >= 0 (0 = off), "
        "got " +
        std::to_string(o.resource_poll_interval));
  }
  if (o.resource_poll_interval == 0 && !o.adapters.empty()) {
    throw Error(
        "start_telemetry: resource_poll_interval is 0 (resource sampling off) but adapters were "
        "given; give them an interval > 0");
  }
  if (o.checkpoint_interval &&
      (!(*o.checkpoint_interval > 0) || !std::isfinite(*o.checkpoint_interval))) {
    throw Error(
        "start_telemetry: checkpoint_interval must be a positive number of seconds, "
        "got " +
        std::to_string(*o.checkpoint_interval));
  }
  if (!(o.stop_timeout >= 0) || !std::isfinite(o.stop_timeout)) {
    throw Error("start_telemetry: stop_timeout must be >= 0 seconds, got " +
                std::to_string(o.stop_timeout));
  }
  if (o.subscriber_queue == 0) {
    throw Error("start_telemetry: subscriber_queue must be at least 1 event");
  }
  for (const auto& p : o.span_processors)
    if (!p) throw Error("start_telemetry: span_processors holds a null processor");
  for (const auto& r : o.metric_readers)
    if (!r) throw Error("start_telemetry: metric_readers holds a null reader");
  for (const auto& e : o.exporters)
    if (!e) throw Error("start_telemetry: exporters holds a null exporter");
  for (const auto& a : o.adapters)
    if (!a) throw Error("start_telemetry: adapters holds a null adapter");
}

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::min(s, 1e9)));
}

std::string overflow_name(OverflowPolicy p) {
  return p == OverflowPolicy::kBlock ? "kBlock" : "kDropNewest";
}

}  // namespace

void set_checkpoint_exporter_factory(CheckpointExporterFactory factory) noexcept {
  g_checkpoint_factory.store(factory, std::memory_order_release);
}

struct TelemetryManager::Impl {
  Impl(std::string sid, TelemetryOptions opts, EmitContextFn context)
      : session_id(std::move(sid)),
        options(std::move(opts)),
        emit_context(std::move(context)),
        start_time(epoch_seconds()),
        losses(std::make_shared<detail::LossCounters>(session_id)),
        metrics(std::make_shared<detail::MetricsStore>(session_id, detail::to_ns(start_time))),
        record(session_id, options.span_history),
        subscribers(options.subscriber_queue, losses),
        trace(detail::SessionTrace::begin(options)),
        pipeline(session_id, metrics, record, subscribers, losses, trace) {
    metrics->set_losses(losses);
  }

  bool emit(Event&& event);
  void add_context(Event& event) const;
  void tick_loop();
  bool stop();

  const std::string session_id;
  TelemetryOptions options;  // processors, readers, exporters and adapters moved out at start
  const EmitContextFn emit_context;
  const double start_time;
  const std::shared_ptr<detail::LossCounters> losses;
  const std::shared_ptr<detail::MetricsStore> metrics;
  detail::SessionRecord record;
  detail::SubscriberStage subscribers;
  const detail::SessionTrace trace;
  detail::Pipeline pipeline;
  std::optional<std::filesystem::path> checkpoint_file;
  std::vector<std::shared_ptr<MetricReader>> readers;
  std::vector<std::shared_ptr<ResourceAdapter>> adapters;

  // Read by every emit(), on any thread: a cache line apart from what the dispatcher writes.
  alignas(detail::kCacheLine) std::unique_ptr<EventBus> bus;
  std::atomic<bool> running{false};

  alignas(detail::kCacheLine) Mutex stop_mu;
  bool stopped ASYNCFLOW_GUARDED_BY(stop_mu) = false;
  bool stop_result ASYNCFLOW_GUARDED_BY(stop_mu) = true;

  Mutex tick_mu;
  CondVar tick_cv;
  bool tick_stop ASYNCFLOW_GUARDED_BY(tick_mu) = false;
  std::thread ticker;
};

void TelemetryManager::Impl::add_context(Event& event) const {
  // Only custom events: the engine's own events say their task and workflow already.
  const bool wants_task = !event.task_id();
  const bool wants_workflow = event.attribute("asyncflow.workflow_id") == nullptr;
  if (!wants_task && !wants_workflow) return;
  EmitContext context = emit_context();
  if (wants_task && !context.task_id.empty())
    detail::EventAccess::set_task_id(event, std::move(context.task_id));
  if (wants_workflow && !context.workflow_id.empty()) {
    detail::EventAccess::attributes(event).emplace_back("asyncflow.workflow_id",
                                                        std::move(context.workflow_id));
  }
}

bool TelemetryManager::Impl::emit(Event&& event) {
  if (!event.event_type()) {  // a moved-from event: nothing to record
    losses->note_error("an empty (moved-from) event was emitted and ignored");
    return false;
  }
  if (!running.load(std::memory_order_acquire)) {
    losses->emitted_after_stop(event.type());
    return false;
  }
  if (emit_context && !detail::EventAccess::is_builtin(event)) add_context(event);
  // The subscribers' thread must not wait for room: the dispatcher may be waiting for it.
  const bool queued = subscribers.on_delivery_thread() ? bus->emit_deferred(std::move(event))
                                                       : bus->emit(std::move(event));
  if (!queued) {
    if (losses->said_dropped()) {
      losses->dropped(1);  // a drop storm costs a count, not a message per event
    } else if (!bus->running()) {
      losses->dropped(1, "an event was emitted while the session was stopping");
    } else {
      losses->dropped(1, "the bus is full (capacity " + std::to_string(options.bus.capacity) +
                             ", overflow policy " + overflow_name(options.bus.overflow) + ")");
    }
  }
  return queued;
}

void TelemetryManager::Impl::tick_loop() {
  const Clock::duration interval = seconds(*options.checkpoint_interval);
  MutexLock lock(tick_mu);
  while (!tick_cv.wait_for(tick_mu, interval,
                           [this]() ASYNCFLOW_REQUIRES(tick_mu) { return tick_stop; })) {
    lock.unlock();
    // Deferred: the ticker never waits for a full bus (stop() joins it).
    bus->emit_deferred(make_event(detail::metrics_tick(), EventBase{session_id, "asyncflow"}));
    lock.lock();
  }
}

std::shared_ptr<TelemetryManager> TelemetryManager::start(std::string session_id,
                                                          TelemetryOptions options,
                                                          EmitContextFn emit_context) {
  check_options(options);
  if (session_id.empty()) throw Error("start_telemetry: empty session id");
  auto processors = std::move(options.span_processors);
  auto exporters = std::move(options.exporters);
  auto readers = std::move(options.metric_readers);
  auto adapters = std::move(options.adapters);
  // The node poller runs by default, as the seed's resource_poll_interval promises.
  if (options.resource_poll_interval > 0 &&
      std::none_of(adapters.begin(), adapters.end(), [](const auto& a) {
        return dynamic_cast<const NodeResourcePoller*>(a.get()) != nullptr;
      })) {
    adapters.push_back(std::make_shared<NodeResourcePoller>());
  }
  auto impl =
      std::make_shared<Impl>(std::move(session_id), std::move(options), std::move(emit_context));
  Impl& m = *impl;
  try {
    if (!m.options.checkpoint_path.empty()) {
      CheckpointExporterFactory factory = g_checkpoint_factory.load(std::memory_order_acquire);
      if (factory == nullptr) {
        throw Error(
            "start_telemetry: checkpoint_path is set but no checkpoint exporter is "
            "linked; include <asyncflow/exporters/jsonl/jsonl_exporter.hpp> (or "
            "<asyncflow/asyncflow.hpp>) and link asyncflow::exporter_jsonl");
      }
      CheckpointExporter checkpoint = factory(CheckpointRequest{
          m.options.checkpoint_path, m.session_id, static_cast<std::int64_t>(m.start_time)});
      m.checkpoint_file = checkpoint.file;
      m.pipeline.add_exporter(std::move(checkpoint.exporter));
    }
    for (auto& e : exporters) m.pipeline.add_exporter(std::move(e));
    for (auto& p : processors) m.pipeline.add_processor(std::move(p));
    m.pipeline.open_session(m.start_time);
    // The handler co-owns the session: stop() may leave the dispatcher in an exporter call
    // that never returns, and the pipeline must outlive the manager until it does. The cycle
    // (session -> bus -> handler -> session) ends when the dispatcher does.
    m.bus = std::make_unique<EventBus>(
        m.options.bus, [impl](std::vector<Event>& batch) { impl->pipeline.handle(batch); });
  } catch (...) {
    m.pipeline.shutdown(Clock::now());  // a checkpoint created before the failure is closed
    throw;
  }
  std::shared_ptr<TelemetryManager> manager(new TelemetryManager(std::move(impl)));
  m.running.store(true);
  try {
    for (auto& r : readers) {
      r->attach(m.metrics);
      m.readers.push_back(std::move(r));
    }
    if (m.options.checkpoint_interval) m.ticker = std::thread([&m] { m.tick_loop(); });
    // SessionStarted first: an adapter's first sample comes at once, and after it.
    EventBase base{m.session_id, "asyncflow"};
    base.event_time = m.start_time;
    m.emit(make_event(events::SessionStarted(), std::move(base)));
    for (auto& a : adapters) {
      a->start(*manager, m.options.resource_poll_interval);
      m.adapters.push_back(std::move(a));
    }
  } catch (...) {
    manager->stop();
    throw;
  }
  return manager;
}

bool TelemetryManager::Impl::stop() {
  const Clock::time_point deadline = Clock::now() + seconds(options.stop_timeout);
  // From here, the subscribers' stage gives up waiting at the deadline, so neither the
  // dispatcher (handing batches over) nor its thread holds stop() up past it.
  subscribers.set_deadline(deadline);
  // Adapters first, so their last samples are part of the session.
  for (const auto& a : adapters) a->stop();
  if (ticker.joinable()) {
    {
      MutexLock lock(tick_mu);
      tick_stop = true;
    }
    tick_cv.notify_all();
    ticker.join();
  }
  // Refuse new events, then end the session through the bus so SessionEnded is processed
  // after everything emitted before it.
  running.store(false, std::memory_order_release);
  const double now = epoch_seconds();
  bus->flush(detail::time_left(deadline));
  EventBase ended{session_id, "asyncflow"};
  ended.event_time = now;
  // Deferred: never waits, even when the drain above timed out on a full bus.
  bus->emit_deferred(make_event(events::SessionEnded(), std::move(ended),
                                {{"duration_seconds", now - start_time}}));
  // A dispatcher still in an exporter's call at the deadline is left to finish it: stop_timeout
  // bounds stop() even when an exporter hangs.
  bus->stop(detail::time_left(deadline), HandlerAtStop::kAbandon);
  const bool abandoned = bus->abandoned();
  if (abandoned) pipeline.abandon(options.stop_timeout);
  if (const std::uint64_t discarded = bus->discarded(); discarded != 0) {
    losses->dropped(discarded, detail::count(discarded, "event") +
                                   " still queued when stop_timeout (" +
                                   detail::seconds_text(options.stop_timeout) + ") ran out" +
                                   (abandoned ? " (an exporter's call had not returned)" : ""));
  }
  // The dispatcher has ended or was abandoned: finish() and shutdown() skip what it holds.
  record.set_ended(now - start_time);
  pipeline.finish(epoch_seconds());
  pipeline.shutdown(deadline);
  subscribers.stop(deadline);
  // After the pipeline finished: the readers' final numbers hold every event counted.
  for (const auto& r : readers) {
    if (!r->shutdown(detail::time_left<std::chrono::microseconds>(deadline))) {
      losses->note_error("a metric reader did not shut down cleanly within stop_timeout");
    }
    const MetricLosses lost = r->losses();
    if (lost.records != 0) {
      losses->not_exported("metric reader", lost.records, "metric record", lost.last_error, false);
    }
  }
  readers.clear();
  adapters.clear();
  const TelemetryLosses l = losses->snapshot();
  if (l.lost_data() || l.export_failures != 0 || l.subscriber_errors != 0) {
    log_message(l.lost_data() ? LogLevel::kError : LogLevel::kWarning,
                "session " + session_id + " ended: " + l.to_string());
  }
  return !l.lost_data();
}

TelemetryManager::TelemetryManager(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

TelemetryManager::~TelemetryManager() {
  // Unlike stop(), this may run on the subscribers' thread: a callback that held the last
  // reference and was released by unsubscribe(). The subscribers' stage then lets its thread
  // finish on its own instead of joining it.
  MutexLock lock(impl_->stop_mu);
  if (!impl_->stopped) {
    impl_->stopped = true;
    impl_->stop_result = impl_->stop();
  }
}

std::string TelemetryManager::traceparent(std::string_view task_id) const {
  const detail::SessionTrace& t = impl_->trace;
  return to_traceparent(TraceParent{t.trace_id, t.task_span_id(task_id), 1});
}

const std::string& TelemetryManager::tracestate() const noexcept {
  return impl_->trace.tracestate;
}

const std::string& TelemetryManager::session_id() const noexcept {
  return impl_->session_id;
}
const TelemetryOptions& TelemetryManager::options() const noexcept {
  return impl_->options;
}
bool TelemetryManager::running() const noexcept {
  return impl_->running.load();
}

bool TelemetryManager::emit(Event event) {
  return impl_->emit(std::move(event));
}

bool TelemetryManager::emit(const EventTypePtr& type, EventBase base,
                            std::initializer_list<std::pair<std::string_view, FieldValue>> values) {
  if (base.session_id.empty()) base.session_id = impl_->session_id;
  return emit(make_event(type, std::move(base), values));
}

bool TelemetryManager::emit(const EventTypePtr& type, std::shared_ptr<const EventContext> context,
                            std::string task_id, std::vector<FieldValue> values) {
  return impl_->emit(detail::EventAccess::context_event(
      type, std::move(context), std::move(task_id), std::move(values), /*pending=*/true));
}

Subscription TelemetryManager::subscribe(std::function<void(const Event&)> callback) {
  return impl_->subscribers.subscribe(std::move(callback));
}

bool TelemetryManager::flush(double timeout_seconds) {
  if (on_telemetry_thread()) return false;  // it would wait for itself
  const Clock::time_point deadline = Clock::now() + seconds(timeout_seconds);
  if (!impl_->bus->flush(detail::time_left(deadline))) return false;
  if (!impl_->pipeline.force_flush(deadline)) return false;
  return impl_->subscribers.flush(deadline);
}

bool TelemetryManager::stop() {
  Impl& m = *impl_;
  if (on_telemetry_thread()) {
    throw Error(
        "TelemetryManager::stop() called from a telemetry subscriber or exporter of "
        "session " +
        m.session_id +
        ": it would wait for itself; stop the session "
        "from another thread");
  }
  MutexLock stop_lock(m.stop_mu);
  if (!m.stopped) {
    m.stopped = true;
    m.stop_result = m.stop();
  }
  return m.stop_result;
}

std::vector<SpanData> TelemetryManager::read_traces(
    const std::optional<std::string>& session_id, const std::optional<std::string>& task_id) const {
  return impl_->record.traces(session_id, task_id);
}

MetricsSnapshot TelemetryManager::read_metrics() const {
  return impl_->metrics->collect();
}

TaskCounts TelemetryManager::task_count() const {
  using detail::Instrument;
  const auto& m = *impl_->metrics;
  auto n = [&](Instrument i) { return static_cast<std::int64_t>(std::llround(m.total(i))); };
  return TaskCounts{n(Instrument::kTasksSubmitted), n(Instrument::kTasksCompleted),
                    n(Instrument::kTasksFailed), n(Instrument::kTasksCanceled),
                    n(Instrument::kTasksRunning)};
}

double TelemetryManager::session_duration() const {
  auto round6 = [](double v) { return std::round(v * 1e6) / 1e6; };
  if (auto ended = impl_->record.ended()) return round6(*ended);
  return round6(epoch_seconds() - impl_->start_time);
}

TelemetrySummary TelemetryManager::summary() const {
  TelemetrySummary s;
  s.session_id = impl_->session_id;
  s.duration_seconds = session_duration();
  s.tasks = task_count();
  s.duration = impl_->record.duration_stats();
  s.usage = impl_->record.usage();
  s.resources = impl_->record.resources();
  s.losses = impl_->losses->snapshot();
  return s;
}

std::vector<TaskSpanInfo> TelemetryManager::task_spans() const {
  return impl_->record.task_spans();
}

std::optional<std::filesystem::path> TelemetryManager::checkpoint_file() const {
  return impl_->checkpoint_file;
}

TelemetryLosses TelemetryManager::losses() const {
  return impl_->losses->snapshot();
}

std::uint64_t TelemetryManager::dropped_events() const noexcept {
  return impl_->losses->events_dropped();
}
std::uint64_t TelemetryManager::subscriber_errors() const noexcept {
  return impl_->losses->subscriber_errors();
}
std::uint64_t TelemetryManager::processed_events() const noexcept {
  return impl_->pipeline.processed();
}

bool TelemetryManager::on_telemetry_thread() const noexcept {
  return impl_->bus->on_dispatcher_thread() || impl_->subscribers.on_delivery_thread();
}

}  // namespace asyncflow
