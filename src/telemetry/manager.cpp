// TelemetryManager: session lifecycle, the dispatcher's batch processing (spans and metrics,
// then the checkpoint, then subscribers), and the read-side queries.
#include "asyncflow/telemetry/manager.hpp"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "asyncflow/common/error.hpp"
#include "asyncflow/telemetry/checkpoint.hpp"
#include "asyncflow/telemetry/jsonl.hpp"
#include "common/cache_line.hpp"
#include "common/exception_text.hpp"
#include "event_access.hpp"
#include "line_writers.hpp"
#include "metrics_store.hpp"
#include "span_tracker.hpp"
#include "write_behind.hpp"

namespace asyncflow {

namespace events {
const EventTypePtr& WorkflowStarted() {
  static const EventTypePtr t = detail::EventAccess::immortal(define_event("asyncflow.WorkflowStarted"));
  return t;
}
const EventTypePtr& WorkflowEnded() {
  static const EventTypePtr t = detail::EventAccess::immortal(define_event("asyncflow.WorkflowEnded"));
  return t;
}
}  // namespace events

namespace {

// Internal ticks that wake the dispatcher; never written as events nor shown to subscribers.
// A write tick hands the buffered checkpoint lines to the OS; a checkpoint tick also appends a
// metric snapshot.
const EventTypePtr& write_tick() {
  static const EventTypePtr t = detail::EventAccess::immortal(define_event("asyncflow.internal.WriteTick"));
  return t;
}
const EventTypePtr& checkpoint_tick() {
  static const EventTypePtr t = detail::EventAccess::immortal(define_event("asyncflow.internal.CheckpointTick"));
  return t;
}
bool is_tick(const Event& e) {
  static const EventType* const kWrite = write_tick().get();
  static const EventType* const kCheckpoint = checkpoint_tick().get();
  const EventType* t = e.event_type().get();
  return t == kWrite || t == kCheckpoint;
}

// Checkpoint lines are buffered and written when this much has accumulated, at every write
// tick (kWriteInterval), at flush() and at stop: one write() per event batch cost more than
// formatting when batches are small. 1 MiB rather than 256 KiB: a quarter of the writer's
// wake-ups (futex calls per 100k no-op tasks: 5,500 before, 840 after).
constexpr std::size_t kWriteThreshold = 1024 * 1024;
constexpr std::chrono::milliseconds kWriteInterval{100};

void check_options(const TelemetryOptions& o) {
  if (!(o.resource_poll_interval > 0) || !std::isfinite(o.resource_poll_interval)) {
    throw Error("start_telemetry: resource_poll_interval must be a positive number of "
                "seconds, got " + std::to_string(o.resource_poll_interval));
  }
  if (o.checkpoint_interval &&
      (!(*o.checkpoint_interval > 0) || !std::isfinite(*o.checkpoint_interval))) {
    throw Error("start_telemetry: checkpoint_interval must be a positive number of seconds, "
                "got " + std::to_string(*o.checkpoint_interval));
  }
  if (!(o.stop_timeout >= 0) || !std::isfinite(o.stop_timeout)) {
    throw Error("start_telemetry: stop_timeout must be >= 0 seconds, got " +
                std::to_string(o.stop_timeout));
  }
  for (const auto& p : o.span_processors)
    if (!p) throw Error("start_telemetry: span_processors holds a null processor");
  for (const auto& r : o.metric_readers)
    if (!r) throw Error("start_telemetry: metric_readers holds a null reader");
  for (const auto& a : o.adapters)
    if (!a) throw Error("start_telemetry: adapters holds a null adapter");
}

std::chrono::nanoseconds seconds_to_ns(double s) {
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::min(s, 1e9) * 1e9));
}

double percentile(const std::vector<double>& sorted, double q) {
  // Linear interpolation between closest ranks (numpy's default).
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

double round6(double v) { return std::round(v * 1e6) / 1e6; }

/// A span or trace id as the checkpoint writes it, without the JSON quotes ("" for none).
template <class Id>
std::string hex_id(const Id& id) {
  std::string s;
  jsonl::append_id(s, id);
  return s.size() > 2 && s.front() == '"' ? s.substr(1, s.size() - 2) : std::string();
}

}  // namespace

// --- subscriptions -----------------------------------------------------------------------

struct Subscription::Registry {
  struct Entry {
    std::uint64_t id;
    std::function<void(const Event&)> callback;
    std::atomic<bool> active{true};  // cleared by unsubscribe(): also stops the batch in flight
    bool reported = false;  // first exception written to stderr
  };
  std::mutex mu;
  std::uint64_t next_id = 1;
  std::shared_ptr<std::vector<std::shared_ptr<Entry>>> list =
      std::make_shared<std::vector<std::shared_ptr<Entry>>>();
  // Held by the dispatcher while it calls callbacks: unsubscribe() waits on it.
  std::mutex delivering;
  std::atomic<std::thread::id> dispatcher{};

  std::shared_ptr<const std::vector<std::shared_ptr<Entry>>> snapshot() {
    std::lock_guard lock(mu);
    return list;
  }
};

void Subscription::unsubscribe() {
  auto registry = registry_.lock();
  if (!registry) return;
  {
    std::lock_guard lock(registry->mu);
    auto next = std::make_shared<std::vector<std::shared_ptr<Registry::Entry>>>();
    for (const auto& e : *registry->list) {
      if (e->id != id_) {
        next->push_back(e);
      } else {
        e->active.store(false, std::memory_order_relaxed);
      }
    }
    registry->list = std::move(next);
  }
  // Wait for a batch in flight (it may still hold the old list), unless we are that batch.
  if (registry->dispatcher.load() != std::this_thread::get_id()) {
    std::lock_guard wait(registry->delivering);
  }
  registry_.reset();
}

bool Subscription::active() const {
  auto registry = registry_.lock();
  if (!registry) return false;
  std::lock_guard lock(registry->mu);
  for (const auto& e : *registry->list)
    if (e->id == id_) return true;
  return false;
}

// --- the manager ---------------------------------------------------------------------------

struct TelemetryManager::Impl {
  Impl(std::string sid, TelemetryOptions opts, CurrentTaskFn current)
      : session_id(std::move(sid)),
        options(std::move(opts)),
        current_task(current),
        start_time(epoch_seconds()),
        metrics(std::make_shared<detail::MetricsStore>(session_id, detail::to_ns(start_time))),
        tracker(session_id, *metrics),
        subscribers(std::make_shared<Subscription::Registry>()) {}

  void handle(std::span<Event> batch);
  void deliver_spans(std::vector<detail::FinishedSpan>& spans);
  SpanData span_data(const detail::FinishedSpan& span) const;
  void write_metric_line();
  void tick_loop();
  std::uint64_t dropped() const { return (bus ? bus->dropped() : 0) + refused.load(); }

  const std::string session_id;
  const TelemetryOptions options;
  const CurrentTaskFn current_task;
  const double start_time;
  std::shared_ptr<detail::MetricsStore> metrics;

  // Dispatcher-owned (and stop()'s after the dispatcher was joined).
  detail::SpanTracker tracker;
  std::unique_ptr<CheckpointWriter> writer;
  std::unique_ptr<detail::WriteBehind> write_behind;  // writes `writer`'s buffers until stop
  detail::LineBuffer lines;
  std::vector<detail::FinishedSpan> finished;
  std::vector<detail::SpanIds> ids;

  // Read by every emit(), on any thread: a cache line apart from the state the dispatcher
  // writes per batch. Sharing one with state_mu and the vectors above cost every emit() a
  // cache miss (perf: the running() check alone was 3% of the producer's time).
  alignas(detail::kCacheLine) std::shared_ptr<Subscription::Registry> subscribers;
  std::unique_ptr<EventBus> bus;
  std::atomic<bool> running{false};
  std::atomic<std::uint64_t> refused{0};

  // Read side, guarded by state_mu.
  alignas(detail::kCacheLine) mutable std::mutex state_mu;
  std::deque<detail::FinishedSpan> history;
  std::vector<double> durations;  // task span lifetimes with a complete lifecycle
  std::map<std::string, ResourceSample> resources;
  std::optional<double> ended_duration;

  std::atomic<std::uint64_t> callback_errors{0};
  std::atomic<std::uint64_t> processed{0};

  std::mutex stop_mu;
  bool stopped = false;
  bool stop_result = true;

  std::mutex tick_mu;
  std::condition_variable tick_cv;
  bool tick_stop = false;
  std::thread ticker;
};

SpanData TelemetryManager::Impl::span_data(const detail::FinishedSpan& span) const {
  if (const auto* task = std::get_if<detail::TaskSpan>(&span))
    return detail::to_span_data(*task, session_id);
  return std::get<SpanData>(span);
}

void TelemetryManager::Impl::deliver_spans(std::vector<detail::FinishedSpan>& spans) {
  if (spans.empty()) return;
  std::optional<jsonl::detail::JsonCursor> cursor;
  if (writer) cursor.emplace(lines, spans.size() * jsonl::detail::kExpectedLineSize);
  for (const detail::FinishedSpan& s : spans) {
    if (!options.span_processors.empty()) {
      const SpanData data = span_data(s);
      for (const auto& p : options.span_processors) {
        try {
          p->on_end(data);
        } catch (const std::exception& e) {
          if (callback_errors.fetch_add(1) == 0)
            std::fprintf(stderr, "asyncflow telemetry: a span processor threw: %s\n", e.what());
        } catch (...) {
          callback_errors.fetch_add(1);
        }
      }
    }
    if (!cursor) continue;
    if (const auto* task = std::get_if<detail::TaskSpan>(&s)) {
      detail::write_task_span_line(*cursor, *task, session_id);
    } else {
      jsonl::detail::write_span_line(*cursor, std::get<SpanData>(s));
    }
  }
  cursor.reset();
  std::lock_guard lock(state_mu);
  for (detail::FinishedSpan& s : spans) {
    const auto* task = std::get_if<detail::TaskSpan>(&s);
    if (task != nullptr && !task->block && !task->incomplete && !task->unfinished)
      durations.push_back(task->duration_seconds());
    if (options.span_history == 0) continue;
    if (history.size() == options.span_history) history.pop_front();
    history.push_back(std::move(s));
  }
}

void TelemetryManager::Impl::write_metric_line() {
  if (!writer) return;
  jsonl::detail::JsonCursor cursor(lines, jsonl::detail::kExpectedLineSize);
  jsonl::detail::write_metric_line(cursor, epoch_seconds(), metrics->collect());
}

void TelemetryManager::Impl::handle(std::span<Event> batch) {
  subscribers->dispatcher.store(std::this_thread::get_id(), std::memory_order_relaxed);
  finished.clear();
  ids.resize(batch.size());
  bool write_now = false;
  bool snapshot = false;
  auto metrics_lock = metrics->lock();  // one lock per batch: readers wait at most a batch
  std::optional<jsonl::detail::JsonCursor> cursor;  // room is made once for the batch's lines
  if (writer) cursor.emplace(lines, batch.size() * jsonl::detail::kExpectedLineSize);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Event& e = batch[i];
    if (is_tick(e)) {
      write_now = true;
      snapshot = snapshot || e.event_type() == checkpoint_tick();
      continue;
    }
    static const EventType* const kSessionEnded = events::SessionEnded().get();
    static const EventType* const kResourceUpdate = events::ResourceUpdate().get();
    try {
      ids[i] = tracker.process(e, finished);
    } catch (const std::exception& ex) {
      // A malformed custom event must not stop the session; it is still written.
      ids[i] = {tracker.trace_id(), tracker.session_span_id()};
      if (callback_errors.fetch_add(1) == 0)
        std::fprintf(stderr, "asyncflow telemetry: processing %s failed: %s\n", e.type().c_str(),
                     ex.what());
    }
    if (e.event_type().get() == kSessionEnded) {
      std::lock_guard lock(state_mu);
      ended_duration = e.number("duration_seconds");
    } else if (e.event_type().get() == kResourceUpdate && e.node_id() &&
               e.text("resource_scope") == "per_node") {
      ResourceSample r;
      r.backend = e.backend();
      r.node_id = *e.node_id();
      auto num = [&](const char* f) -> std::optional<double> {
        const FieldValue& v = e.field(f);
        if (const auto* d = std::get_if<double>(&v)) return *d;
        return std::nullopt;
      };
      r.cpu_percent = num("cpu_percent");
      r.memory_percent = num("memory_percent");
      r.gpu_percent = num("gpu_percent");
      r.disk_read_bytes = num("disk_read_bytes");
      r.disk_write_bytes = num("disk_write_bytes");
      r.net_sent_bytes = num("net_sent_bytes");
      r.net_recv_bytes = num("net_recv_bytes");
      std::lock_guard lock(state_mu);
      resources[r.backend + "/" + r.node_id] = std::move(r);
    }
    if (cursor) jsonl::detail::write_event_line(*cursor, e, ids[i].trace_id, ids[i].span_id);
  }
  cursor.reset();
  metrics_lock.unlock();
  deliver_spans(finished);
  if (snapshot) write_metric_line();
  if (writer && !lines.empty() && (write_now || lines.size() >= kWriteThreshold))
    write_behind->submit(lines);

  auto subs = subscribers->snapshot();
  if (!subs->empty()) {
    std::lock_guard delivering(subscribers->delivering);
    for (const Event& e : batch) {
      if (is_tick(e)) continue;
      for (const auto& s : *subs) {
        if (!s->active.load(std::memory_order_relaxed)) continue;
        try {
          s->callback(e);
        } catch (...) {
          callback_errors.fetch_add(1);
          if (!s->reported) {
            s->reported = true;
            std::fprintf(stderr,
                         "asyncflow telemetry: subscriber %llu threw on %s: %s (further errors "
                         "from it are only counted)\n",
                         static_cast<unsigned long long>(s->id), e.type().c_str(),
                         detail::describe_exception(std::current_exception()).second.c_str());
          }
        }
      }
    }
  }
  processed.fetch_add(batch.size(), std::memory_order_relaxed);
}

void TelemetryManager::Impl::tick_loop() {
  using Clock = std::chrono::steady_clock;
  auto next_snapshot = Clock::time_point::max();
  if (options.checkpoint_interval)
    next_snapshot = Clock::now() + seconds_to_ns(*options.checkpoint_interval);
  std::unique_lock lock(tick_mu);
  while (!tick_cv.wait_for(lock, kWriteInterval, [this] { return tick_stop; })) {
    lock.unlock();
    const bool snapshot = Clock::now() >= next_snapshot;
    if (snapshot) next_snapshot = Clock::now() + seconds_to_ns(*options.checkpoint_interval);
    // A tick lost to a full bus is harmless: the next one comes, and a full bus writes anyway.
    bus->emit(make_event(snapshot ? checkpoint_tick() : write_tick(),
                         EventBase{session_id, "asyncflow"}));
    lock.lock();
  }
}

std::shared_ptr<TelemetryManager> TelemetryManager::start(std::string session_id,
                                                          TelemetryOptions options,
                                                          CurrentTaskFn current_task) {
  check_options(options);
  if (session_id.empty()) throw Error("start_telemetry: empty session id");
  auto impl = std::make_unique<Impl>(std::move(session_id), std::move(options), current_task);
  Impl& m = *impl;
  if (!m.options.checkpoint_path.empty()) {
    m.writer = std::make_unique<CheckpointWriter>(
        m.options.checkpoint_path, m.session_id, static_cast<std::int64_t>(m.start_time));
    m.write_behind = std::make_unique<detail::WriteBehind>(*m.writer);
  }
  m.tracker.open_session(m.start_time);
  m.bus = std::make_unique<EventBus>(m.options.bus,
                                     [&m](std::span<Event> batch) { m.handle(batch); });
  m.metrics->set_sources([&m] { return m.dropped(); }, [&m] { return m.callback_errors.load(); });
  std::shared_ptr<TelemetryManager> manager(new TelemetryManager(std::move(impl)));
  for (const auto& r : m.options.metric_readers) r->attach(m.metrics);
  m.running.store(true);
  if (m.writer) m.ticker = std::thread([&m] { m.tick_loop(); });
  try {
    for (const auto& a : m.options.adapters) a->start(*manager, m.options.resource_poll_interval);
  } catch (...) {
    manager->stop();
    throw;
  }
  EventBase base{m.session_id, "asyncflow"};
  base.event_time = m.start_time;
  m.bus->emit(make_event(events::SessionStarted(), std::move(base)));
  return manager;
}

TelemetryManager::TelemetryManager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TelemetryManager::~TelemetryManager() { stop(); }

const std::string& TelemetryManager::session_id() const noexcept { return impl_->session_id; }
const TelemetryOptions& TelemetryManager::options() const noexcept { return impl_->options; }
bool TelemetryManager::running() const noexcept { return impl_->running.load(); }

bool TelemetryManager::emit(Event event) {
  Impl& m = *impl_;
  if (!m.running.load(std::memory_order_acquire)) {
    m.refused.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (!event.task_id() && m.current_task != nullptr) {
    if (std::string uid = m.current_task(); !uid.empty())
      detail::EventAccess::set_task_id(event, std::move(uid));
  }
  return m.bus->emit(std::move(event));
}

bool TelemetryManager::emit(const EventTypePtr& type, EventBase base,
                            std::initializer_list<std::pair<std::string_view, FieldValue>> values) {
  if (base.session_id.empty()) base.session_id = impl_->session_id;
  return emit(make_event(type, std::move(base), values));
}

Subscription TelemetryManager::subscribe(std::function<void(const Event&)> callback) {
  if (!callback) throw Error("subscribe: empty callback");
  auto& reg = *impl_->subscribers;
  std::lock_guard lock(reg.mu);
  auto entry = std::make_shared<Subscription::Registry::Entry>();
  entry->id = reg.next_id++;
  entry->callback = std::move(callback);
  auto next = std::make_shared<std::vector<std::shared_ptr<Subscription::Registry::Entry>>>(*reg.list);
  next->push_back(entry);
  reg.list = std::move(next);
  return Subscription(impl_->subscribers, entry->id);
}

bool TelemetryManager::flush(double timeout_seconds) {
  if (impl_->writer && impl_->bus->running())
    impl_->bus->emit(make_event(write_tick(), EventBase{impl_->session_id, "asyncflow"}));
  const auto deadline = std::chrono::steady_clock::now() + seconds_to_ns(timeout_seconds);
  if (!impl_->bus->flush(seconds_to_ns(timeout_seconds))) return false;
  // The tick's lines are in the file when this returns.
  return !impl_->write_behind || impl_->write_behind->drain(deadline);
}

bool TelemetryManager::stop() {
  Impl& m = *impl_;
  std::lock_guard stop_lock(m.stop_mu);
  if (m.stopped) return m.stop_result;
  m.stopped = true;
  // Adapters first, so their last samples are part of the session.
  for (const auto& a : m.options.adapters) a->stop();
  if (m.ticker.joinable()) {
    {
      std::lock_guard lock(m.tick_mu);
      m.tick_stop = true;
    }
    m.tick_cv.notify_all();
    m.ticker.join();
  }
  // Refuse new events, then end the session through the bus so SessionEnded is processed
  // after everything emitted before it.
  m.running.store(false, std::memory_order_release);
  const double now = epoch_seconds();
  // Drain first, so SessionEnded finds room even if the bus was full (it must not be the
  // event that gets dropped); both waits share the stop timeout.
  const auto deadline = std::chrono::steady_clock::now() + seconds_to_ns(m.options.stop_timeout);
  m.bus->flush(seconds_to_ns(m.options.stop_timeout));
  EventBase ended{m.session_id, "asyncflow"};
  ended.event_time = now;
  m.bus->emit(make_event(events::SessionEnded(), std::move(ended),
                         {{"duration_seconds", now - m.start_time}}));
  const bool drained = m.bus->stop(std::max(std::chrono::nanoseconds(0),
                                            deadline - std::chrono::steady_clock::now()));

  // The dispatcher has ended: its state is ours now (m.lines may hold unwritten lines), and
  // so is the writer once the write-behind thread has written what it was given.
  if (m.write_behind) m.write_behind->stop();
  m.finished.clear();
  {
    auto metrics_lock = m.metrics->lock();
    m.tracker.close_all(epoch_seconds(), m.finished);
  }
  m.deliver_spans(m.finished);
  {
    std::lock_guard lock(m.state_mu);
    if (!m.ended_duration) m.ended_duration = now - m.start_time;
  }
  m.write_metric_line();
  if (m.writer) {
    if (!m.lines.empty()) m.writer->append(m.lines.view());
    m.writer->close();
    if (m.writer->bytes_lost() > 0) {
      std::fprintf(stderr, "asyncflow telemetry: %llu bytes of %s were not written: %s\n",
                   static_cast<unsigned long long>(m.writer->bytes_lost()),
                   m.writer->path().c_str(), m.writer->last_error().c_str());
    }
  }
  for (const auto& p : m.options.span_processors) {
    try {
      p->shutdown();
    } catch (...) {
      m.callback_errors.fetch_add(1);
    }
  }
  for (const auto& r : m.options.metric_readers) {
    try {
      r->shutdown();
    } catch (...) {
      m.callback_errors.fetch_add(1);
    }
  }
  // Readers may outlive this manager: freeze the counts they read from it.
  m.metrics->set_sources([v = m.dropped()] { return v; },
                         [v = m.callback_errors.load()] { return v; });
  m.stop_result = drained && m.dropped() == 0 &&
                  (!m.writer || m.writer->bytes_lost() == 0);
  return m.stop_result;
}

std::vector<SpanData> TelemetryManager::read_traces(const std::optional<std::string>& session_id,
                                                    const std::optional<std::string>& task_id) const {
  std::lock_guard lock(impl_->state_mu);
  std::vector<SpanData> out;
  for (const detail::FinishedSpan& entry : impl_->history) {
    if (const auto* task = std::get_if<detail::TaskSpan>(&entry)) {
      if (session_id && impl_->session_id != *session_id) continue;
      if (task_id && task->task_id != *task_id) continue;
      out.push_back(detail::to_span_data(*task, impl_->session_id));
      continue;
    }
    const SpanData& s = std::get<SpanData>(entry);
    if (session_id && s.text("session_id") != *session_id) continue;
    if (task_id && s.text("task_id") != *task_id) continue;
    out.push_back(s);
  }
  return out;
}

MetricsSnapshot TelemetryManager::read_metrics() const { return impl_->metrics->collect(); }

TaskCounts TelemetryManager::task_count() const {
  using detail::Instrument;
  const auto& m = *impl_->metrics;
  auto n = [&](Instrument i) { return static_cast<std::int64_t>(std::llround(m.total(i))); };
  return TaskCounts{n(Instrument::kTasksSubmitted), n(Instrument::kTasksCompleted),
                    n(Instrument::kTasksFailed), n(Instrument::kTasksCanceled),
                    n(Instrument::kTasksRunning)};
}

double TelemetryManager::session_duration() const {
  std::lock_guard lock(impl_->state_mu);
  if (impl_->ended_duration) return round6(*impl_->ended_duration);
  return round6(epoch_seconds() - impl_->start_time);
}

TelemetrySummary TelemetryManager::summary() const {
  TelemetrySummary s;
  s.session_id = impl_->session_id;
  s.duration_seconds = session_duration();
  s.tasks = task_count();
  std::vector<double> d;
  {
    std::lock_guard lock(impl_->state_mu);
    d = impl_->durations;
    s.resources = impl_->resources;
  }
  if (!d.empty()) {
    std::sort(d.begin(), d.end());
    DurationStats st;
    st.count = d.size();
    for (double v : d) st.total_seconds += v;
    st.mean_seconds = round6(st.total_seconds / static_cast<double>(d.size()));
    st.total_seconds = round6(st.total_seconds);
    st.min_seconds = round6(d.front());
    st.max_seconds = round6(d.back());
    st.p50_seconds = round6(percentile(d, 0.50));
    st.p95_seconds = round6(percentile(d, 0.95));
    s.duration = st;
  }
  return s;
}

std::vector<TaskSpanInfo> TelemetryManager::task_spans() const {
  std::vector<TaskSpanInfo> out;
  std::lock_guard lock(impl_->state_mu);
  for (const detail::FinishedSpan& entry : impl_->history) {
    const auto* s = std::get_if<detail::TaskSpan>(&entry);
    if (s == nullptr || s->block) continue;
    TaskSpanInfo t;
    t.task_id = s->task_id;
    t.backend = s->backend;
    if (s->executable != nullptr) t.executable = *s->executable;
    if (s->task_type != nullptr) t.task_type = *s->task_type;
    t.status = std::string(s->status());
    if (s->workflow_id != nullptr) t.workflow_id = *s->workflow_id;
    t.duration_seconds = round6(s->duration_seconds());
    t.span_id = hex_id(s->span_id);
    t.trace_id = hex_id(s->trace_id);
    if (s->outcome == detail::TaskSpan::Outcome::kFailed) t.error_type = s->error_type;
    t.incomplete_lifecycle = s->incomplete;
    out.push_back(std::move(t));
  }
  return out;
}

std::optional<std::filesystem::path> TelemetryManager::checkpoint_file() const {
  if (!impl_->writer) return std::nullopt;
  return impl_->writer->path();
}

std::uint64_t TelemetryManager::dropped_events() const noexcept { return impl_->dropped(); }
std::uint64_t TelemetryManager::subscriber_errors() const noexcept {
  return impl_->callback_errors.load();
}
std::uint64_t TelemetryManager::processed_events() const noexcept {
  return impl_->processed.load();
}

// --- summary as JSON -----------------------------------------------------------------------

std::string TelemetrySummary::to_json() const {
  std::string o = "{\"session_id\": ";
  jsonl::append_string(o, session_id);
  o += ", \"duration_seconds\": ";
  jsonl::append_double(o, duration_seconds);
  o += ", \"tasks\": {\"submitted\": " + std::to_string(tasks.submitted) +
       ", \"completed\": " + std::to_string(tasks.completed) +
       ", \"failed\": " + std::to_string(tasks.failed) +
       ", \"canceled\": " + std::to_string(tasks.canceled) +
       ", \"running\": " + std::to_string(tasks.running) + "}, \"duration\": {";
  if (duration) {
    const std::pair<const char*, double> stats[] = {
        {"total_seconds", duration->total_seconds}, {"mean_seconds", duration->mean_seconds},
        {"min_seconds", duration->min_seconds},     {"max_seconds", duration->max_seconds},
        {"p50_seconds", duration->p50_seconds},     {"p95_seconds", duration->p95_seconds}};
    o += "\"count\": " + std::to_string(duration->count);
    for (const auto& [k, v] : stats) {
      o += ", \"";
      o += k;
      o += "\": ";
      jsonl::append_double(o, v);
    }
  }
  o += "}, \"resources\": {";
  bool first = true;
  for (const auto& [key, r] : resources) {
    if (!first) o += ", ";
    first = false;
    jsonl::append_string(o, key);
    o += ": {\"backend\": ";
    jsonl::append_string(o, r.backend);
    o += ", \"node_id\": ";
    jsonl::append_string(o, r.node_id);
    const std::pair<const char*, const std::optional<double>*> fields[] = {
        {"cpu_percent", &r.cpu_percent},         {"memory_percent", &r.memory_percent},
        {"gpu_percent", &r.gpu_percent},         {"disk_read_bytes", &r.disk_read_bytes},
        {"disk_write_bytes", &r.disk_write_bytes}, {"net_sent_bytes", &r.net_sent_bytes},
        {"net_recv_bytes", &r.net_recv_bytes}};
    for (const auto& [k, v] : fields) {
      o += ", \"";
      o += k;
      o += "\": ";
      if (*v) {
        jsonl::append_double(o, **v);
      } else {
        o += "null";
      }
    }
    o += '}';
  }
  o += "}}";
  return o;
}

}  // namespace asyncflow
