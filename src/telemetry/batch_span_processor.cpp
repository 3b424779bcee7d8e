// The batch and simple span processors (batch_span_processor.hpp).
//
// Thread safety. The telemetry dispatcher (on_end) and the export thread meet in State under
// State::mu: the queue, the flush generations and the stop state. The export thread calls the
// exporter with no lock held. Invariants:
//  1. Every span on_end() got is, exactly once, exported, counted dropped (queue full, export
//     failed, left at shutdown), or still queued / in the export call.
//  2. The export thread is woken by the first span of an empty queue (it then waits, timed,
//     for the schedule delay), by a whole batch, a flush or the shutdown: at most twice a
//     batch, never per span.
//  3. A flush requested at generation g is done when the queue was seen empty after g with no
//     export in progress: every span queued before the request was then exported or counted.
#include "asyncflow/telemetry/batch_span_processor.hpp"

#include <pthread.h>

#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "asyncflow/common/error.hpp"
#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/log.hpp"
#include "env_settings.hpp"

namespace asyncflow {

namespace {

using Clock = std::chrono::steady_clock;

/// OTEL_BSP_* as a positive integer, else `fallback`.
std::int64_t env_positive(const char* name, std::int64_t fallback) {
  return detail::env_positive_integer(name, fallback, "batch span processor");
}

/// What the exporter lost after taking spans (a receiver's partial rejection) joins `l`.
void add_exporter_losses(const SpanExporter& exporter, SpanLosses& l) noexcept {
  try {
    const ExporterLosses lost = exporter.losses();
    if (lost.records == 0) return;
    l.spans += lost.records;
    l.last_error = lost.last_error;
  } catch (...) {
    l.last_error = "the exporter could not say what it lost";
  }
}

BatchSpanProcessorOptions resolve(BatchSpanProcessorOptions o) {
  using std::chrono::milliseconds;
  if (o.max_queue_size == 0) {
    o.max_queue_size = static_cast<std::size_t>(env_positive("OTEL_BSP_MAX_QUEUE_SIZE", 2048));
  }
  if (o.max_export_batch_size == 0) {
    o.max_export_batch_size =
        static_cast<std::size_t>(env_positive("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512));
    // From the environment, a batch larger than the queue is capped (the SDK spec's rule).
    if (o.max_export_batch_size > o.max_queue_size) o.max_export_batch_size = o.max_queue_size;
  }
  if (o.schedule_delay.count() <= 0) {
    o.schedule_delay = milliseconds(env_positive("OTEL_BSP_SCHEDULE_DELAY", 5000));
  }
  if (o.export_timeout.count() <= 0) {
    o.export_timeout = milliseconds(env_positive("OTEL_BSP_EXPORT_TIMEOUT", 30000));
  }
  if (o.max_export_batch_size > o.max_queue_size) {
    throw Error("BatchSpanProcessor: max_export_batch_size (" +
                std::to_string(o.max_export_batch_size) + ") is above max_queue_size (" +
                std::to_string(o.max_queue_size) + ")");
  }
  return o;
}

}  // namespace

struct BatchSpanProcessor::State {
  State(std::shared_ptr<SpanExporter> e, BatchSpanProcessorOptions o)
      : exporter(std::move(e)), options(o) {}

  void run();
  void note(std::string message) ASYNCFLOW_REQUIRES(mu) { last_error = std::move(message); }

  const std::shared_ptr<SpanExporter> exporter;
  const BatchSpanProcessorOptions options;

  Mutex mu;
  CondVar work_cv;  // the export thread waits for work
  CondVar done_cv;  // flushes and the shutdown wait for progress
  std::deque<SpanRecord> queue ASYNCFLOW_GUARDED_BY(mu);
  Clock::time_point oldest ASYNCFLOW_GUARDED_BY(mu);  // when the first queued span came
  std::uint64_t flush_requested ASYNCFLOW_GUARDED_BY(mu) = 0;
  std::uint64_t flush_done ASYNCFLOW_GUARDED_BY(mu) = 0;
  bool exporting ASYNCFLOW_GUARDED_BY(mu) = false;
  std::size_t in_call ASYNCFLOW_GUARDED_BY(mu) = 0;  // spans in the export call
  bool stopping ASYNCFLOW_GUARDED_BY(mu) = false;
  bool abandoned ASYNCFLOW_GUARDED_BY(mu) = false;  // shutdown() gave up on the thread
  bool exited ASYNCFLOW_GUARDED_BY(mu) = false;
  bool shut ASYNCFLOW_GUARDED_BY(mu) = false;
  bool shutdown_result ASYNCFLOW_GUARDED_BY(mu) = false;
  Clock::time_point deadline ASYNCFLOW_GUARDED_BY(mu) = Clock::time_point::max();
  std::string last_error ASYNCFLOW_GUARDED_BY(mu);
  BatchSpanProcessorStats stats ASYNCFLOW_GUARDED_BY(mu);
  bool said_full ASYNCFLOW_GUARDED_BY(mu) = false;
  std::thread thread;
};

void BatchSpanProcessor::State::run() {
  pthread_setname_np(pthread_self(), "af-span-export");
  std::vector<SpanRecord> batch;
  batch.reserve(options.max_export_batch_size);
  MutexLock lock(mu);
  for (;;) {
    auto ready = [this]() ASYNCFLOW_REQUIRES(mu) {
      return stopping || flush_requested > flush_done ||
             queue.size() >= options.max_export_batch_size ||
             (!queue.empty() && Clock::now() >= oldest + options.schedule_delay);
    };
    while (!ready()) {
      if (queue.empty()) {
        work_cv.wait(mu);
      } else {
        work_cv.wait_until(mu, oldest + options.schedule_delay, ready);
      }
    }
    if (stopping && (queue.empty() || Clock::now() >= deadline)) {
      stats.dropped_at_shutdown += queue.size();
      if (!queue.empty()) note(std::to_string(queue.size()) + " spans still queued at shutdown");
      queue.clear();
      break;
    }
    if (queue.empty()) {  // a flush with nothing queued
      flush_done = flush_requested;
      done_cv.notify_all();
      continue;
    }
    const std::size_t n = std::min(queue.size(), options.max_export_batch_size);
    batch.clear();
    for (std::size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(queue.front()));
      queue.pop_front();
    }
    oldest = Clock::now();  // the rest waited since about now, at most
    exporting = true;
    in_call = n;
    lock.unlock();
    const ExportResult r = exporter->export_spans(batch);
    lock.lock();
    exporting = false;
    in_call = 0;
    if (abandoned) break;  // shutdown() counted this batch and the rest
    if (r == ExportResult::kSuccess) {
      stats.spans_exported += n;
      ++stats.exports;
    } else {
      stats.dropped_export_failed += n;
      note(std::to_string(n) + " spans not exported: the exporter failed (" +
           std::string(to_string(r)) + ")");
    }
    if (queue.empty()) {
      flush_done = flush_requested;
      done_cv.notify_all();
    }
  }
  exited = true;
  done_cv.notify_all();
}

BatchSpanProcessor::BatchSpanProcessor(std::shared_ptr<SpanExporter> exporter,
                                       BatchSpanProcessorOptions options) {
  if (!exporter) throw Error("BatchSpanProcessor: the exporter is null");
  state_ = std::make_shared<State>(std::move(exporter), resolve(options));
  state_->thread = std::thread([s = state_] { s->run(); });
}

BatchSpanProcessor::~BatchSpanProcessor() {
  shutdown(std::chrono::seconds(5));
}

const BatchSpanProcessorOptions& BatchSpanProcessor::options() const noexcept {
  return state_->options;
}

void BatchSpanProcessor::on_end(const SpanData& span) noexcept {
  State& s = *state_;
  bool wake = false;
  bool say_full = false;
  {
    MutexLock lock(s.mu);
    ++s.stats.spans_received;
    if (s.stopping) {
      ++s.stats.dropped_at_shutdown;
      return;
    }
    if (s.queue.size() >= s.options.max_queue_size) {
      ++s.stats.dropped_queue_full;
      if (!s.said_full) {
        s.said_full = say_full = true;
        s.note("the span queue was full (max_queue_size " +
               std::to_string(s.options.max_queue_size) + "): spans dropped");
      }
    } else {
      try {
        s.queue.emplace_back(span);
      } catch (...) {
        ++s.stats.dropped_queue_full;
        return;
      }
      if (s.queue.size() == 1) s.oldest = Clock::now();
      // Invariant 2: the first span starts the thread's timed wait, a whole batch ends it.
      wake = s.queue.size() == 1 || s.queue.size() == s.options.max_export_batch_size;
    }
  }
  if (wake) s.work_cv.notify_one();
  if (say_full) {
    log_message(LogLevel::kWarning,
                "batch span processor: the span queue is full (max_queue_size " +
                    std::to_string(s.options.max_queue_size) +
                    "): spans are dropped and counted; the exporter does not keep up");
  }
}

bool BatchSpanProcessor::force_flush(std::chrono::microseconds timeout) noexcept {
  State& s = *state_;
  MutexLock lock(s.mu);
  if (s.exited) return s.queue.empty();
  const std::uint64_t target = ++s.flush_requested;
  s.work_cv.notify_one();
  return s.done_cv.wait_until(s.mu, Clock::now() + timeout, [&]() ASYNCFLOW_REQUIRES(s.mu) {
    return s.flush_done >= target || s.exited;
  }) && s.flush_done >= target;
}

bool BatchSpanProcessor::shutdown(std::chrono::microseconds timeout) noexcept {
  State& s = *state_;
  const Clock::time_point deadline = Clock::now() + timeout;
  MutexLock lock(s.mu);
  if (s.shut) return s.shutdown_result;
  s.shut = true;
  s.stopping = true;
  s.deadline = deadline;
  s.work_cv.notify_one();
  s.done_cv.wait_until(s.mu, deadline, [&]() ASYNCFLOW_REQUIRES(s.mu) { return s.exited; });
  bool ok = true;
  if (s.exited) {
    std::thread t = std::move(s.thread);
    lock.unlock();
    t.join();
    const auto left =
        std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
    ok = s.exporter->shutdown(std::max(left, std::chrono::microseconds(0)));
    lock.lock();
    if (!ok) s.note("the exporter did not shut down cleanly");
  } else {
    // Stuck in an export call past the deadline: left to finish it; its batch and the queue
    // are counted now (invariant 1), and the exporter is not shut down under it.
    s.abandoned = true;
    s.stats.dropped_at_shutdown += s.in_call + s.queue.size();
    s.note(std::to_string(s.in_call + s.queue.size()) +
           " spans lost: the exporter was still in a call when shutdown's timeout ran out");
    s.queue.clear();
    s.thread.detach();
    ok = false;
  }
  s.shutdown_result = ok;  // what was lost is losses()' to say
  return s.shutdown_result;
}

SpanLosses BatchSpanProcessor::losses() const noexcept {
  State& s = *state_;
  SpanLosses l;
  {
    MutexLock lock(s.mu);
    l.spans =
        s.stats.dropped_queue_full + s.stats.dropped_export_failed + s.stats.dropped_at_shutdown;
    try {
      if (l.spans != 0) l.last_error = "batch span processor: " + s.last_error;
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the count still tells
    }
  }
  add_exporter_losses(*s.exporter, l);
  return l;
}

BatchSpanProcessorStats BatchSpanProcessor::stats() const {
  State& s = *state_;
  MutexLock lock(s.mu);
  return s.stats;
}

SimpleSpanProcessor::SimpleSpanProcessor(std::shared_ptr<SpanExporter> exporter)
    : exporter_(std::move(exporter)) {
  if (!exporter_) throw Error("SimpleSpanProcessor: the exporter is null");
}

void SimpleSpanProcessor::on_end(const SpanData& span) noexcept {
  try {
    const SpanRecord record(span);
    if (exporter_->export_spans(std::span<const SpanRecord>(&record, 1)) != ExportResult::kSuccess)
      failed_.fetch_add(1, std::memory_order_relaxed);
  } catch (...) {
    failed_.fetch_add(1, std::memory_order_relaxed);
  }
}

bool SimpleSpanProcessor::force_flush(std::chrono::microseconds timeout) noexcept {
  return exporter_->force_flush(timeout);
}

bool SimpleSpanProcessor::shutdown(std::chrono::microseconds timeout) noexcept {
  return exporter_->shutdown(timeout);
}

SpanLosses SimpleSpanProcessor::losses() const noexcept {
  SpanLosses l;
  l.spans = failed_.load(std::memory_order_relaxed);
  if (l.spans != 0) l.last_error = "simple span processor: the exporter failed";
  add_exporter_losses(*exporter_, l);
  return l;
}

}  // namespace asyncflow
