// BatchSpanProcessor: full batches under load, the schedule delay, a full queue counted and
// said once, flush and shutdown bounded by their timeouts while the exporter hangs, and the
// session counting what a processor lost; SimpleSpanProcessor's failures counted.
#include <gtest/gtest.h>

#include <asyncflow/common/error.hpp>
#include <asyncflow/telemetry/batch_span_processor.hpp>
#include <asyncflow/telemetry/manager.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "support/log_capture.hpp"
#include "support/sync.hpp"

namespace asyncflow {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::Gate;

/// Records batch sizes; can hold its first call on a gate, or fail every call. Thread-safe.
class ProbeExporter final : public SpanExporter {
 public:
  std::string name() const override { return "probe"; }
  ExportResult export_spans(std::span<const SpanRecord> batch) noexcept override {
    if (hold_first && !held_.exchange(true)) {
      entered.open();
      release.wait();
    }
    {
      std::lock_guard lock(mu_);
      sizes_.push_back(batch.size());
      total_ += batch.size();
    }
    if (total() >= notify_at) reached.open();
    return fail ? ExportResult::kFailure : ExportResult::kSuccess;
  }
  bool force_flush(std::chrono::microseconds) noexcept override { return true; }
  bool shutdown(std::chrono::microseconds) noexcept override {
    shut.store(true);
    return true;
  }
  std::vector<std::size_t> sizes() {
    std::lock_guard lock(mu_);
    return sizes_;
  }
  std::size_t total() {
    std::lock_guard lock(mu_);
    return total_;
  }

  bool hold_first = false;
  bool fail = false;
  std::size_t notify_at = ~std::size_t{0};
  Gate entered, release, reached;
  std::atomic<bool> shut{false};

 private:
  std::atomic<bool> held_{false};
  std::mutex mu_;
  std::vector<std::size_t> sizes_;
  std::size_t total_ = 0;
};

SpanData span(std::uint64_t id) {
  SpanData s;
  s.name = "task";
  s.span_id = id;
  return s;
}

TEST(BatchSpanProcessor, UnderLoadEveryBatchIsFull) {
  auto probe = std::make_shared<ProbeExporter>();
  BatchSpanProcessor p(probe, {.max_queue_size = 20 * 512,
                               .max_export_batch_size = 512,
                               .schedule_delay = 60s,
                               .export_timeout = 30s});
  for (std::uint64_t i = 0; i < 20 * 512; ++i) p.on_end(span(i + 1));
  ASSERT_TRUE(p.shutdown(std::chrono::seconds(30)));
  const auto sizes = probe->sizes();
  ASSERT_EQ(sizes.size(), 20u);
  for (std::size_t n : sizes) EXPECT_EQ(n, 512u);
  EXPECT_DOUBLE_EQ(p.stats().mean_batch(), 512.0);
  EXPECT_EQ(p.stats().dropped_queue_full, 0u);
  EXPECT_TRUE(probe->shut.load());
}

TEST(BatchSpanProcessor, APartBatchGoesOutAfterTheScheduleDelay) {
  auto probe = std::make_shared<ProbeExporter>();
  probe->notify_at = 3;
  BatchSpanProcessor p(probe, {.max_queue_size = 64,
                               .max_export_batch_size = 16,
                               .schedule_delay = 20ms,
                               .export_timeout = 30s});
  for (std::uint64_t i = 0; i < 3; ++i) p.on_end(span(i + 1));
  EXPECT_TRUE(probe->reached.wait_for(30s));  // no flush: the delay sent them
  EXPECT_EQ(probe->sizes(), std::vector<std::size_t>{3});
}

TEST(BatchSpanProcessor, AFullQueueCountsEachDropAndSaysSoOnce) {
  testing::LogCapture log;
  auto probe = std::make_shared<ProbeExporter>();
  probe->hold_first = true;
  BatchSpanProcessor p(probe, {.max_queue_size = 8,
                               .max_export_batch_size = 4,
                               .schedule_delay = 60s,
                               .export_timeout = 30s});
  for (std::uint64_t i = 0; i < 4; ++i) p.on_end(span(i + 1));
  ASSERT_TRUE(probe->entered.wait_for(30s));  // 4 in the export call
  for (std::uint64_t i = 0; i < 20; ++i) p.on_end(span(i + 10));
  EXPECT_EQ(p.stats().dropped_queue_full, 12u);  // 8 fit in the queue
  EXPECT_EQ(log.count("the span queue is full (max_queue_size 8)"), 1u) << log.all();
  probe->release.open();
  EXPECT_TRUE(p.shutdown(std::chrono::seconds(30)));  // a clean end; losses() says the rest
  EXPECT_EQ(probe->total(), 12u);
  const SpanLosses l = p.losses();
  EXPECT_EQ(l.spans, 12u);
  EXPECT_NE(l.last_error.find("full"), std::string::npos) << l.last_error;
  const auto st = p.stats();
  EXPECT_EQ(st.spans_received, st.spans_exported + st.dropped_queue_full);
}

TEST(BatchSpanProcessor, FlushAndShutdownReturnWithinTheirTimeoutWhileTheExporterHangs) {
  auto probe = std::make_shared<ProbeExporter>();
  probe->hold_first = true;
  BatchSpanProcessor p(probe, {.max_queue_size = 64,
                               .max_export_batch_size = 4,
                               .schedule_delay = 60s,
                               .export_timeout = 30s});
  for (std::uint64_t i = 0; i < 6; ++i) p.on_end(span(i + 1));
  ASSERT_TRUE(probe->entered.wait_for(30s));
  EXPECT_FALSE(p.force_flush(50ms));  // returns, false: 4 in the hung call, 2 queued
  EXPECT_FALSE(p.shutdown(50ms));
  EXPECT_FALSE(probe->shut.load());  // not shut down under a call in progress
  EXPECT_EQ(p.stats().dropped_at_shutdown, 6u);
  EXPECT_EQ(p.losses().spans, 6u);
  p.on_end(span(99));  // after shutdown: counted, not queued
  EXPECT_EQ(p.stats().dropped_at_shutdown, 7u);
  probe->release.open();  // the left thread finishes its call and ends on its own
}

TEST(BatchSpanProcessor, FlushExportsEverythingQueuedBeforeIt) {
  auto probe = std::make_shared<ProbeExporter>();
  BatchSpanProcessor p(probe, {.max_queue_size = 64,
                               .max_export_batch_size = 16,
                               .schedule_delay = 60s,
                               .export_timeout = 30s});
  for (std::uint64_t i = 0; i < 40; ++i) p.on_end(span(i + 1));
  ASSERT_TRUE(p.force_flush(std::chrono::seconds(30)));
  EXPECT_EQ(probe->total(), 40u);
  EXPECT_TRUE(p.force_flush(std::chrono::seconds(30)));  // nothing queued: at once
}

TEST(BatchSpanProcessor, BadSettingsAreClearErrors) {
  EXPECT_THROW(BatchSpanProcessor(nullptr), Error);
  EXPECT_THROW(BatchSpanProcessor(std::make_shared<ProbeExporter>(),
                                  {.max_queue_size = 4, .max_export_batch_size = 8}),
               Error);
}

TEST(BatchSpanProcessor, ASessionCountsWhatItsProcessorLost) {
  auto probe = std::make_shared<ProbeExporter>();
  probe->fail = true;
  auto p = std::make_shared<BatchSpanProcessor>(probe);
  auto tm = TelemetryManager::start("s", {.span_processors = {p}});
  EXPECT_FALSE(tm->stop());  // the session span's export failed
  const TelemetryLosses l = tm->losses();
  EXPECT_EQ(l.records_not_exported, 1u) << l.to_string();
  EXPECT_NE(l.last_error.find("span processor"), std::string::npos) << l.last_error;
}

TEST(SimpleSpanProcessor, ExportsEachSpanAndCountsFailures) {
  auto probe = std::make_shared<ProbeExporter>();
  SimpleSpanProcessor p(probe);
  p.on_end(span(1));
  p.on_end(span(2));
  EXPECT_EQ(probe->sizes(), (std::vector<std::size_t>{1, 1}));
  probe->fail = true;
  p.on_end(span(3));
  EXPECT_EQ(p.losses().spans, 1u);
}

}  // namespace
}  // namespace asyncflow
