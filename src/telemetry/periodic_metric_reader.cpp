// The periodic exporting metric reader (periodic_metric_reader.hpp).
//
// Thread safety. The reader's thread and the callers (flush, shutdown) meet in State under
// State::mu. The thread collects and exports with no lock held; exports never overlap (one
// thread makes them all). Invariants:
//  1. Every snapshot collected is, exactly once, exported, counted failed, or in the export
//     call (counted lost when shutdown gives up on that call).
//  2. A flush requested at generation g is answered by an export collected after the request;
//     the final export (shutdown) is collected after every event the session counted, since
//     the manager calls shutdown() after its pipeline finished.
#include "asyncflow/telemetry/periodic_metric_reader.hpp"

#include <pthread.h>

#include <algorithm>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "asyncflow/common/error.hpp"
#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/log.hpp"
#include "common/exception_text.hpp"
#include "common/time_left.hpp"
#include "env_settings.hpp"

namespace asyncflow {

namespace {

using Clock = std::chrono::steady_clock;

PeriodicMetricReaderOptions resolve(PeriodicMetricReaderOptions o) {
  using std::chrono::milliseconds;
  constexpr const char* kWho = "periodic metric reader";
  if (o.export_interval.count() <= 0) {
    o.export_interval =
        milliseconds(detail::env_positive_integer("OTEL_METRIC_EXPORT_INTERVAL", 60000, kWho));
  }
  if (o.export_timeout.count() <= 0) {
    o.export_timeout =
        milliseconds(detail::env_positive_integer("OTEL_METRIC_EXPORT_TIMEOUT", 30000, kWho));
  }
  return o;
}

}  // namespace

struct PeriodicExportingMetricReader::State {
  State(std::shared_ptr<MetricExporter> e, PeriodicMetricReaderOptions o)
      : exporter(std::move(e)), options(o) {}

  void run();
  /// One collect + export; the lock is released around both.
  void collect_and_export() ASYNCFLOW_REQUIRES(mu);
  void note(std::string message) ASYNCFLOW_REQUIRES(mu) { last_error = std::move(message); }

  const std::shared_ptr<MetricExporter> exporter;
  const PeriodicMetricReaderOptions options;

  Mutex mu;
  CondVar work_cv;  // the reader's thread waits for its next moment
  CondVar done_cv;  // flushes and the shutdown wait for exports
  std::shared_ptr<const MetricProducer> producer ASYNCFLOW_GUARDED_BY(mu);
  std::uint64_t flush_requested ASYNCFLOW_GUARDED_BY(mu) = 0;
  std::uint64_t flush_done ASYNCFLOW_GUARDED_BY(mu) = 0;
  bool last_ok ASYNCFLOW_GUARDED_BY(mu) = false;  // the latest export succeeded
  bool in_call ASYNCFLOW_GUARDED_BY(mu) = false;  // a snapshot is in the exporter's call
  bool stopping ASYNCFLOW_GUARDED_BY(mu) = false;
  bool final_done ASYNCFLOW_GUARDED_BY(mu) = false;  // the shutdown's export was made
  bool abandoned ASYNCFLOW_GUARDED_BY(mu) = false;   // shutdown() gave up on the thread
  bool exited ASYNCFLOW_GUARDED_BY(mu) = false;
  bool shut ASYNCFLOW_GUARDED_BY(mu) = false;
  bool shutdown_result ASYNCFLOW_GUARDED_BY(mu) = false;
  std::string last_error ASYNCFLOW_GUARDED_BY(mu);
  PeriodicMetricReaderStats stats ASYNCFLOW_GUARDED_BY(mu);
  bool said_failure ASYNCFLOW_GUARDED_BY(mu) = false;
  std::thread thread;
};

void PeriodicExportingMetricReader::State::collect_and_export() {
  const std::shared_ptr<const MetricProducer> from = producer;
  in_call = true;
  mu.unlock();
  std::optional<MetricsSnapshot> snapshot;
  std::string collect_error;
  try {
    snapshot = from->collect();
  } catch (...) {
    collect_error = detail::describe_exception(std::current_exception()).second;
  }
  ExportResult r = ExportResult::kFailure;
  if (snapshot) r = exporter->export_metrics(*snapshot);
  mu.lock();
  in_call = false;
  if (abandoned) return;  // shutdown() counted this snapshot
  bool say = false;
  if (!snapshot) {
    ++stats.collect_failures;
    last_ok = false;
    note("collecting the metrics failed: " + collect_error);
    say = !std::exchange(said_failure, true);
  } else {
    ++stats.collections;
    last_ok = r == ExportResult::kSuccess;
    if (last_ok) {
      ++stats.exports;
    } else {
      ++stats.failed_exports;
      note("a metric snapshot was not exported: the exporter failed (" + std::string(to_string(r)) +
           ")");
      say = !std::exchange(said_failure, true);
    }
  }
  if (say) {
    // Said once; the count goes on and reaches the session's losses at stop.
    const std::string message = "periodic metric reader: " + last_error;
    mu.unlock();
    log_message(LogLevel::kWarning, message);
    mu.lock();
  }
}

void PeriodicExportingMetricReader::State::run() {
  pthread_setname_np(pthread_self(), "af-metric-export");
  MutexLock lock(mu);
  Clock::time_point next = Clock::now() + options.export_interval;
  for (;;) {
    work_cv.wait_until(mu, next, [this]() ASYNCFLOW_REQUIRES(mu) {
      return stopping || flush_requested > flush_done;
    });
    if (abandoned) break;
    const bool final_export = stopping;
    const std::uint64_t answering = flush_requested;  // collected after these requests
    if (final_export || answering > flush_done || Clock::now() >= next) {
      collect_and_export();
      if (abandoned) break;
      flush_done = answering;
      next = Clock::now() + options.export_interval;
      if (final_export) final_done = true;
      done_cv.notify_all();
      if (final_export) break;
    }
  }
  exited = true;
  done_cv.notify_all();
}

PeriodicExportingMetricReader::PeriodicExportingMetricReader(
    std::shared_ptr<MetricExporter> exporter, PeriodicMetricReaderOptions options) {
  if (!exporter) throw Error("PeriodicExportingMetricReader: the exporter is null");
  state_ = std::make_shared<State>(std::move(exporter), resolve(options));
}

PeriodicExportingMetricReader::~PeriodicExportingMetricReader() {
  shutdown(state_->options.export_timeout);
}

const PeriodicMetricReaderOptions& PeriodicExportingMetricReader::options() const noexcept {
  return state_->options;
}

void PeriodicExportingMetricReader::attach(std::shared_ptr<const MetricProducer> producer) {
  if (!producer) throw Error("PeriodicExportingMetricReader: attached to a null producer");
  State& s = *state_;
  MutexLock lock(s.mu);
  if (s.producer || s.shut) {
    throw Error("PeriodicExportingMetricReader: already attached (a reader serves one session)");
  }
  s.producer = std::move(producer);
  s.thread = std::thread([st = state_] { st->run(); });
}

bool PeriodicExportingMetricReader::force_flush(std::chrono::microseconds timeout) noexcept {
  State& s = *state_;
  const Clock::time_point deadline =
      Clock::now() + std::min<std::chrono::microseconds>(timeout, s.options.export_timeout);
  MutexLock lock(s.mu);
  if (!s.producer || s.stopping || s.exited) return false;
  const std::uint64_t target = ++s.flush_requested;
  s.work_cv.notify_one();
  return s.done_cv.wait_until(
             s.mu, deadline,
             [&]() ASYNCFLOW_REQUIRES(s.mu) { return s.flush_done >= target || s.exited; }) &&
         s.flush_done >= target && s.last_ok;
}

bool PeriodicExportingMetricReader::shutdown(std::chrono::microseconds timeout) noexcept {
  State& s = *state_;
  const Clock::time_point deadline =
      Clock::now() + std::min<std::chrono::microseconds>(timeout, s.options.export_timeout);
  MutexLock lock(s.mu);
  if (s.shut) return s.shutdown_result;
  s.shut = true;
  bool ok = true;
  if (s.thread.joinable()) {
    s.stopping = true;
    s.work_cv.notify_one();
    s.done_cv.wait_until(s.mu, deadline, [&]() ASYNCFLOW_REQUIRES(s.mu) { return s.exited; });
    if (s.exited) {
      ok = s.final_done && s.last_ok;
      std::thread t = std::move(s.thread);
      lock.unlock();
      t.join();
      lock.lock();
    } else {
      // Stuck in a call past the deadline: left to finish it. The snapshot in the call (or the
      // final one, not yet collected) is counted now (invariant 1); the exporter is not shut
      // down under it.
      s.abandoned = true;
      ++s.stats.lost_at_shutdown;
      s.note(std::string("the final metric snapshot was not exported: ") +
             (s.in_call ? "the exporter was still in a call" : "the reader had not got to it") +
             " when shutdown's timeout ran out");
      s.thread.detach();
      s.shutdown_result = false;
      return false;
    }
  }
  lock.unlock();
  const bool exporter_ok =
      s.exporter->shutdown(detail::time_left<std::chrono::microseconds>(deadline));
  lock.lock();
  if (!exporter_ok) s.note("the exporter did not shut down cleanly");
  s.producer.reset();  // the session may go
  s.shutdown_result = ok && exporter_ok;
  return s.shutdown_result;
}

MetricLosses PeriodicExportingMetricReader::losses() const noexcept {
  State& s = *state_;
  MetricLosses l;
  {
    MutexLock lock(s.mu);
    l.records = s.stats.failed_exports + s.stats.lost_at_shutdown;
    try {
      if (l.records != 0) l.last_error = "periodic metric reader: " + s.last_error;
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the count still tells
    }
  }
  // What the exporter lost after a call succeeded (data points a receiver rejected).
  try {
    const ExporterLosses lost = s.exporter->losses();
    if (lost.records != 0) {
      l.records += lost.records;
      l.last_error = lost.last_error;
    }
  } catch (...) {
    l.last_error = "periodic metric reader: the exporter could not say what it lost";
  }
  return l;
}

PeriodicMetricReaderStats PeriodicExportingMetricReader::stats() const {
  State& s = *state_;
  MutexLock lock(s.mu);
  return s.stats;
}

}  // namespace asyncflow
