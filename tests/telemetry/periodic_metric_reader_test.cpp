// PeriodicExportingMetricReader: exports on its interval and once more with the final numbers at
// shutdown, flushes on demand, counts every snapshot it could not export (failed, or held by an
// exporter that hangs past shutdown's timeout), reads OTEL_METRIC_EXPORT_*, and a session adds
// what its reader lost to its losses.
#include <gtest/gtest.h>

#include <asyncflow/common/error.hpp>
#include <asyncflow/telemetry/batch_span_processor.hpp>
#include <asyncflow/telemetry/manager.hpp>
#include <asyncflow/telemetry/periodic_metric_reader.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "support/log_capture.hpp"
#include "support/scoped_env.hpp"
#include "support/sync.hpp"

namespace asyncflow {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::Gate;
using testing::LogCapture;
using testing::ScopedEnv;

/// A producer whose one counter is whatever the test sets. Thread-safe.
class SettableProducer final : public MetricProducer {
 public:
  MetricsSnapshot collect() const override {
    MetricsSnapshot s;
    s.start_ns = 1;
    s.time_ns = Clock::now().time_since_epoch().count();
    MetricData d;
    d.name = "tasks_completed_total";
    d.points.push_back(MetricPoint{});
    d.points.back().value = static_cast<double>(value.load());
    s.metrics.push_back(std::move(d));
    return s;
  }
  std::atomic<int> value{0};
};

/// Keeps the counter value of every snapshot it gets; can hold a call on a gate or fail.
/// Thread-safe.
class ProbeMetricExporter final : public MetricExporter {
 public:
  std::string name() const override { return "probe"; }
  ExportResult export_metrics(const MetricsSnapshot& snapshot) noexcept override {
    if (hold_next.exchange(false)) {
      entered.open();
      release.wait();
    }
    std::size_t n = 0;
    {
      std::lock_guard lock(mu_);
      values_.push_back(snapshot.total("tasks_completed_total"));
      n = values_.size();
    }
    if (n >= notify_at) reached.open();
    return fail.load() ? ExportResult::kFailure : ExportResult::kSuccess;
  }
  bool force_flush(std::chrono::microseconds) noexcept override { return true; }
  bool shutdown(std::chrono::microseconds) noexcept override {
    shut.store(true);
    return true;
  }
  std::vector<double> values() {
    std::lock_guard lock(mu_);
    return values_;
  }

  std::atomic<bool> hold_next{false};
  std::atomic<bool> fail{false};
  std::size_t notify_at = ~std::size_t{0};
  Gate entered, release, reached;
  std::atomic<bool> shut{false};

 private:
  std::mutex mu_;
  std::vector<double> values_;
};

/// Takes every span and keeps none.
class NullSpanExporter final : public SpanExporter {
 public:
  std::string name() const override { return "null"; }
  ExportResult export_spans(std::span<const SpanRecord>) noexcept override {
    return ExportResult::kSuccess;
  }
  bool force_flush(std::chrono::microseconds) noexcept override { return true; }
  bool shutdown(std::chrono::microseconds) noexcept override { return true; }
};

TEST(PeriodicMetricReader, ExportsEveryIntervalThenTheFinalNumbersAtShutdown) {
  auto producer = std::make_shared<SettableProducer>();
  auto probe = std::make_shared<ProbeMetricExporter>();
  probe->notify_at = 3;
  PeriodicExportingMetricReader reader(probe, {.export_interval = 10ms, .export_timeout = 5s});
  reader.attach(producer);
  ASSERT_TRUE(probe->reached.wait_for(30s)) << "three periodic exports";
  producer->value = 42;
  EXPECT_TRUE(reader.shutdown(5s));
  const std::vector<double> v = probe->values();
  ASSERT_GE(v.size(), 4u);
  EXPECT_EQ(v.back(), 42);  // the last export holds the numbers at shutdown
  EXPECT_TRUE(probe->shut.load());
  const PeriodicMetricReaderStats st = reader.stats();
  EXPECT_EQ(st.exports, v.size());
  EXPECT_EQ(st.failed_exports, 0u);
  EXPECT_EQ(reader.losses().records, 0u);
  EXPECT_TRUE(reader.shutdown(5s));  // idempotent
  EXPECT_EQ(probe->values().size(), v.size());
}

TEST(PeriodicMetricReader, FlushExportsNowAndSaysWhetherItWorked) {
  auto producer = std::make_shared<SettableProducer>();
  auto probe = std::make_shared<ProbeMetricExporter>();
  PeriodicExportingMetricReader reader(probe, {.export_interval = 1h, .export_timeout = 5s});
  EXPECT_FALSE(reader.force_flush(1s)) << "not attached: nothing to read";
  reader.attach(producer);
  producer->value = 7;
  EXPECT_TRUE(reader.force_flush(5s));
  EXPECT_EQ(probe->values(), (std::vector<double>{7}));
  probe->fail = true;
  LogCapture log;
  EXPECT_FALSE(reader.force_flush(5s));
  EXPECT_FALSE(reader.force_flush(5s));
  EXPECT_EQ(log.count("periodic metric reader"), 1u) << "said once:\n" << log.all();
  EXPECT_EQ(reader.losses().records, 2u);
  EXPECT_NE(reader.losses().last_error.find("exporter failed"), std::string::npos);
  EXPECT_FALSE(reader.shutdown(5s)) << "the final export failed too";
  EXPECT_EQ(reader.losses().records, 3u);
}

TEST(PeriodicMetricReader, ShutdownReturnsWithinItsTimeoutWhileTheExporterHangs) {
  auto producer = std::make_shared<SettableProducer>();
  auto probe = std::make_shared<ProbeMetricExporter>();
  probe->hold_next = true;
  auto reader = std::make_unique<PeriodicExportingMetricReader>(
      probe, PeriodicMetricReaderOptions{.export_interval = 1h, .export_timeout = 30s});
  reader->attach(producer);
  EXPECT_FALSE(reader->force_flush(50ms)) << "the exporter holds the call";
  ASSERT_TRUE(probe->entered.wait_for(30s));
  const auto t0 = Clock::now();
  EXPECT_FALSE(reader->shutdown(100ms));
  EXPECT_LT(Clock::now() - t0, 5s);
  const MetricLosses lost = reader->losses();
  EXPECT_EQ(lost.records, 1u) << "the final snapshot, never exported";
  EXPECT_NE(lost.last_error.find("still in a call"), std::string::npos) << lost.last_error;
  EXPECT_FALSE(probe->shut.load()) << "not shut down under its own call";
  reader.reset();  // the reader's thread still owns what it needs
  probe->release.open();
}

TEST(PeriodicMetricReader, ReadsTheSdkVariablesAndWarnsByNameOnBadOnes) {
  {
    ScopedEnv interval("OTEL_METRIC_EXPORT_INTERVAL", "250");
    ScopedEnv timeout("OTEL_METRIC_EXPORT_TIMEOUT", "100");
    PeriodicExportingMetricReader reader(std::make_shared<ProbeMetricExporter>());
    EXPECT_EQ(reader.options().export_interval, 250ms);
    EXPECT_EQ(reader.options().export_timeout, 100ms);
  }
  {
    ScopedEnv interval("OTEL_METRIC_EXPORT_INTERVAL", "soon");
    ScopedEnv timeout("OTEL_METRIC_EXPORT_TIMEOUT", "-3");
    LogCapture log;
    PeriodicExportingMetricReader reader(std::make_shared<ProbeMetricExporter>(),
                                         {.export_interval = 0ms, .export_timeout = 0ms});
    EXPECT_EQ(reader.options().export_interval, 60000ms);
    EXPECT_EQ(reader.options().export_timeout, 30000ms);
    EXPECT_EQ(log.count("OTEL_METRIC_EXPORT_INTERVAL is not a positive integer"), 1u) << log.all();
    EXPECT_EQ(log.count("OTEL_METRIC_EXPORT_TIMEOUT is not a positive integer"), 1u);
    EXPECT_EQ(log.count("soon"), 0u) << "the value is not repeated";
  }
  {
    ScopedEnv interval("OTEL_METRIC_EXPORT_INTERVAL", "250");
    PeriodicExportingMetricReader reader(std::make_shared<ProbeMetricExporter>(),
                                         {.export_interval = 5s, .export_timeout = 1s});
    EXPECT_EQ(reader.options().export_interval, 5s) << "code wins";
  }
}

TEST(PeriodicMetricReader, MisuseIsAClearError) {
  EXPECT_THROW(PeriodicExportingMetricReader(nullptr), Error);
  PeriodicExportingMetricReader reader(std::make_shared<ProbeMetricExporter>(),
                                       {.export_interval = 1h, .export_timeout = 1s});
  EXPECT_THROW(reader.attach(nullptr), Error);
  reader.attach(std::make_shared<SettableProducer>());
  EXPECT_THROW(reader.attach(std::make_shared<SettableProducer>()), Error);
}

TEST(PeriodicMetricReader, ASessionExportsItsFinalCountsAndCountsWhatTheReaderLost) {
  auto probe = std::make_shared<ProbeMetricExporter>();
  auto reader = std::make_shared<PeriodicExportingMetricReader>(
      probe, PeriodicMetricReaderOptions{.export_interval = 1h, .export_timeout = 5s});
  auto tm = TelemetryManager::start("s", {.metric_readers = {reader}});
  EXPECT_TRUE(tm->stop());
  ASSERT_EQ(probe->values().size(), 1u) << "one export: the final one";
  EXPECT_TRUE(probe->shut.load());

  auto failing = std::make_shared<ProbeMetricExporter>();
  failing->fail = true;
  auto lossy = std::make_shared<PeriodicExportingMetricReader>(
      failing, PeriodicMetricReaderOptions{.export_interval = 1h, .export_timeout = 5s});
  LogCapture log;
  auto tm2 = TelemetryManager::start("s2", {.metric_readers = {lossy}});
  EXPECT_FALSE(tm2->stop()) << "the final snapshot was not exported";
  const TelemetryLosses l = tm2->losses();
  EXPECT_EQ(l.records_not_exported, 1u) << l.to_string();
  EXPECT_NE(l.last_error.find("metric reader"), std::string::npos) << l.last_error;
}

TEST(BatchSpanProcessor, ReadsTheSdkVariablesAndWarnsByNameOnBadOnes) {
  {
    ScopedEnv queue("OTEL_BSP_MAX_QUEUE_SIZE", "100");
    ScopedEnv batch("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500");  // capped at the queue
    ScopedEnv delay("OTEL_BSP_SCHEDULE_DELAY", "20");
    ScopedEnv timeout("OTEL_BSP_EXPORT_TIMEOUT", "70");
    auto exporter = std::make_shared<NullSpanExporter>();
    BatchSpanProcessor p(exporter);
    EXPECT_EQ(p.options().max_queue_size, 100u);
    EXPECT_EQ(p.options().max_export_batch_size, 100u);
    EXPECT_EQ(p.options().schedule_delay, 20ms);
    EXPECT_EQ(p.options().export_timeout, 70ms);
  }
  {
    ScopedEnv queue("OTEL_BSP_MAX_QUEUE_SIZE", "12x");
    LogCapture log;
    BatchSpanProcessor p(std::make_shared<NullSpanExporter>());
    EXPECT_EQ(p.options().max_queue_size, 2048u);
    EXPECT_EQ(log.count("OTEL_BSP_MAX_QUEUE_SIZE is not a positive integer"), 1u) << log.all();
  }
}

}  // namespace
}  // namespace asyncflow
