// TelemetryManager on its own (no engine): session events, subscribers, overflow, exporters,
// metrics rules, stop semantics, bad options.
#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "support/temp_path.hpp"

namespace asyncflow {
namespace {

/// Records every event a subscriber sees (copies), thread-safe.
struct Recorder {
  std::mutex mu;
  std::vector<Event> seen;
  void operator()(const Event& e) {
    std::lock_guard lock(mu);
    seen.push_back(e);
  }
  std::vector<std::string> types() {
    std::lock_guard lock(mu);
    std::vector<std::string> t;
    for (const auto& e : seen) t.push_back(e.type());
    return t;
  }
};

EventBase task_base(const std::string& sid, const std::string& task_id) {
  EventBase b{sid, "thread_pool"};
  b.task_id = task_id;
  b.attributes = {{"executable", std::string("work")}, {"task_type", std::string("function")}};
  return b;
}

TEST(TelemetryManager, SessionStartedFirstAndSessionEndedLast) {
  auto tm = TelemetryManager::start("s.1");
  auto rec = std::make_shared<Recorder>();
  tm->subscribe([rec](const Event& e) { (*rec)(e); });
  EXPECT_TRUE(tm->running());
  ASSERT_TRUE(tm->emit(events::TaskSubmitted(), task_base("", "task.000001")));
  EXPECT_TRUE(tm->stop());
  EXPECT_FALSE(tm->running());
  // The subscriber joined after SessionStarted may have been processed; what it saw is ordered.
  auto types = rec->types();
  ASSERT_FALSE(types.empty());
  EXPECT_EQ(types.back(), "SessionEnded");
  EXPECT_GT(tm->session_duration(), 0.0);
  auto spans = tm->read_traces();
  ASSERT_EQ(spans.size(), 2u);  // the fallback task span (unfinished) and the session span
  EXPECT_EQ(spans.back().name, "session");
  EXPECT_EQ(spans.back().parent_span_id, 0u);
  EXPECT_EQ(spans.front().parent_span_id, spans.back().span_id);
  EXPECT_NE(spans.front().attribute("asyncflow.unfinished"), nullptr);
  // emit() filled in the session id.
  {
    std::lock_guard lock(rec->mu);
    for (const auto& e : rec->seen) EXPECT_EQ(e.session_id(), "s.1");
  }
}

TEST(TelemetryManager, ThrowingSubscriberIsIsolatedAndCounted) {
  auto tm = TelemetryManager::start("s.2");
  std::atomic<int> good{0};
  tm->subscribe([](const Event&) { throw std::runtime_error("boom"); });
  tm->subscribe([&](const Event& e) {
    if (e.type() == "TaskSubmitted") ++good;
  });
  for (int i = 0; i < 100; ++i) {
    std::string id = "t";
    id += std::to_string(i);  // (not "t" + ...: a GCC 12 -O3 -Wrestrict false positive)
    tm->emit(events::TaskSubmitted(), task_base("", id));
  }
  ASSERT_TRUE(tm->flush());
  EXPECT_EQ(good.load(), 100);
  EXPECT_GE(tm->subscriber_errors(), 100u);
  tm->stop();
  EXPECT_EQ(tm->read_metrics().total("telemetry_subscriber_errors"),
            static_cast<double>(tm->subscriber_errors()));
}

TEST(TelemetryManager, UnsubscribeStopsDeliveryWhenItReturns) {
  auto tm = TelemetryManager::start("s.3");
  std::atomic<int> calls{0};
  auto sub = tm->subscribe([&](const Event&) { ++calls; });
  EXPECT_TRUE(sub.active());
  tm->emit(events::TaskSubmitted(), task_base("", "a"));
  ASSERT_TRUE(tm->flush());
  sub.unsubscribe();
  EXPECT_FALSE(sub.active());
  const int before = calls.load();
  for (int i = 0; i < 50; ++i) tm->emit(events::TaskSubmitted(), task_base("", "b"));
  ASSERT_TRUE(tm->flush());
  EXPECT_EQ(calls.load(), before);
  sub.unsubscribe();  // idempotent
  tm->stop();
}

TEST(TelemetryManager, UnsubscribeFromInsideTheCallbackDoesNotDeadlock) {
  auto tm = TelemetryManager::start("s.3b");
  // SessionStarted processed first: otherwise the callback could run (and read *sub) while
  // this thread is still assigning the subscription to *sub.
  ASSERT_TRUE(tm->flush());
  std::atomic<int> calls{0};
  auto sub = std::make_shared<Subscription>();
  *sub = tm->subscribe([&calls, sub](const Event&) {
    ++calls;
    sub->unsubscribe();
  });
  for (int i = 0; i < 10; ++i) tm->emit(events::TaskSubmitted(), task_base("", "x"));
  ASSERT_TRUE(tm->flush());
  EXPECT_EQ(calls.load(), 1);
  tm->stop();
}

TEST(TelemetryManager, OverflowDropsNewestAndCountsExactly) {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool release = false;
  TelemetryOptions opts;
  opts.bus.capacity = 16;
  opts.bus.max_batch = 1;
  auto tm = TelemetryManager::start("s.4", opts);
  tm->subscribe([&](const Event& e) {
    if (e.type() != "TaskSubmitted" || e.task_id() != "gate") return;
    std::unique_lock lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  });
  ASSERT_TRUE(tm->emit(events::TaskSubmitted(), task_base("", "gate")));
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  // The dispatcher holds the gate event; the queue is empty with room for exactly 16.
  int refused = 0;
  for (int i = 0; i < 16 + 1000; ++i) {
    if (!tm->emit(events::TaskSubmitted(), task_base("", "flood"))) ++refused;
  }
  EXPECT_EQ(refused, 1000);
  EXPECT_EQ(tm->dropped_events(), 1000u);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_FALSE(tm->stop());  // events were lost: stop reports it
  EXPECT_EQ(tm->dropped_events(), 1000u);
  EXPECT_EQ(tm->read_metrics().total("telemetry_events_dropped"), 1000.0);
  EXPECT_EQ(tm->task_count().submitted, 17);
}

TEST(TelemetryManager, EmitFromEightThreadsLosesNothingWithTheBlockingPolicy) {
  TelemetryOptions opts;
  opts.bus.capacity = 1024;
  opts.bus.overflow = OverflowPolicy::kBlock;
  auto tm = TelemetryManager::start("s.5", opts);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 5000;
  std::vector<std::int64_t> last(kThreads, -1);
  std::atomic<bool> in_order{true};
  std::atomic<int> seen{0};
  tm->subscribe([&](const Event& e) {
    if (e.type() != "user.Tick") return;
    auto t = std::get<std::int64_t>(e.field("thread"));
    auto n = std::get<std::int64_t>(e.field("n"));
    if (n != last[static_cast<std::size_t>(t)] + 1) in_order = false;
    last[static_cast<std::size_t>(t)] = n;
    ++seen;
  });
  static const auto Tick =
      define_event("user.Tick", {{"thread", FieldType::kInt}, {"n", FieldType::kInt}});
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < kPerThread; ++n) {
        ASSERT_TRUE(tm->emit(Tick, EventBase{}, {{"thread", std::int64_t{t}}, {"n", std::int64_t{n}}}));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(tm->stop());
  EXPECT_EQ(seen.load(), kThreads * kPerThread);
  EXPECT_TRUE(in_order.load());
  EXPECT_EQ(tm->dropped_events(), 0u);
}

TEST(TelemetryManager, RunningGaugeNeverNegativeAndIncompleteLifecyclesFlagged) {
  auto exporter = std::make_shared<InMemorySpanExporter>();
  auto reader = std::make_shared<InMemoryMetricReader>();
  TelemetryOptions opts;
  opts.span_processors = {exporter};
  opts.metric_readers = {reader};
  auto tm = TelemetryManager::start("s.6", opts);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // t1: full lifecycle; t2: canceled before it started (no TaskStarted).
  tm->emit(events::TaskCreated(), task_base("", "t1"));
  tm->emit(events::TaskSubmitted(), task_base("", "t1"));
  tm->emit(events::TaskStarted(), task_base("", "t1"));
  tm->emit(events::TaskCompleted(), task_base("", "t1"), {{"duration_seconds", nan}});
  tm->emit(events::TaskCreated(), task_base("", "t2"));
  Recorder rec;
  tm->subscribe([&](const Event& e) { rec(e); });
  tm->emit(events::TaskCanceled(), task_base("", "t2"), {{"duration_seconds", nan}});
  tm->stop();

  const TaskCounts c = tm->task_count();
  EXPECT_EQ(c.submitted, 1);
  EXPECT_EQ(c.completed, 1);
  EXPECT_EQ(c.canceled, 1);
  EXPECT_EQ(c.running, 0);
  const MetricsSnapshot m = reader->read();
  const MetricData* hist = m.find("task_duration_seconds");
  ASSERT_NE(hist, nullptr);
  EXPECT_EQ(hist->total_count(), 1u);  // the incomplete lifecycle is not a duration sample
  for (const MetricData& md : m.metrics) {
    for (const MetricPoint& p : md.points) {
      for (const auto& [k, v] : p.attributes) EXPECT_NE(k, "task_id") << md.name;
    }
  }
  // The canceled event was completed by the dispatcher: duration 0 and the flag.
  std::lock_guard lock(rec.mu);
  auto it = std::find_if(rec.seen.begin(), rec.seen.end(),
                         [](const Event& e) { return e.type() == "TaskCanceled"; });
  ASSERT_NE(it, rec.seen.end());
  const Event& canceled = *it;
  EXPECT_EQ(canceled.number("duration_seconds"), 0.0);
  ASSERT_NE(canceled.attribute("incomplete_lifecycle"), nullptr);
  auto spans = exporter->spans(std::nullopt, "t2");
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].status, SpanStatus::kError);
  EXPECT_EQ(spans[0].text("status"), "canceled");
  auto ok = exporter->spans("s.6", "t1");
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].status, SpanStatus::kOk);
  EXPECT_EQ(tm->read_traces(std::nullopt, "t1").size(), 1u);
  EXPECT_TRUE(tm->read_traces("other-session").empty());
}

TEST(TelemetryManager, StopIsIdempotentAndSafeFromTwoThreads) {
  auto tm = TelemetryManager::start("s.7");
  std::thread a([&] { tm->stop(); });
  std::thread b([&] { tm->stop(); });
  a.join();
  b.join();
  EXPECT_TRUE(tm->stop());
  EXPECT_FALSE(tm->emit(events::TaskSubmitted(), task_base("", "late")));
  EXPECT_EQ(tm->dropped_events(), 1u);
}

TEST(TelemetryManager, UnwritableCheckpointPathIsAClearErrorAtStart) {
  const auto file = asyncflow::testing::fresh_temp_path("not_a_dir");
  std::ofstream(file) << "x";
  TelemetryOptions opts;
  opts.checkpoint_path = file / "telemetry";
  try {
    TelemetryManager::start("s.8", opts);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((file / "telemetry").string()), std::string::npos)
        << e.what();
  }
}

TEST(TelemetryManager, BadOptionsAreClearErrors) {
  TelemetryOptions a;
  a.resource_poll_interval = 0;
  EXPECT_THROW(
      {
        try {
          TelemetryManager::start("s.9", a);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("resource_poll_interval"), std::string::npos);
          throw;
        }
      },
      Error);
  TelemetryOptions b;
  b.checkpoint_interval = -1.0;
  EXPECT_THROW(TelemetryManager::start("s.9", b), Error);
  TelemetryOptions c;
  c.bus.max_batch = 0;
  EXPECT_THROW(TelemetryManager::start("s.9", c), Error);
  EXPECT_THROW(TelemetryManager::start("", {}), Error);
}

TEST(TelemetryManager, ResourceUpdatesFeedGaugesAndSummary) {
  auto tm = TelemetryManager::start("s.10");
  EventBase node{"", "thread_pool"};
  node.node_id = "vm";
  tm->emit(events::ResourceUpdate(), node, {{"cpu_percent", 40.0}, {"memory_percent", 20.0}});
  tm->emit(events::ResourceUpdate(), node, {{"cpu_percent", 60.0}, {"memory_percent", 25.0}});
  tm->emit(events::ResourceUpdate(), node, {{"gpu_percent", 99.0}, {"gpu_id", std::int64_t{0}}});
  tm->stop();
  EXPECT_EQ(tm->read_metrics().total("node_cpu_utilization"), 60.0);
  const TelemetrySummary s = tm->summary();
  ASSERT_EQ(s.resources.count("thread_pool/vm"), 1u);
  // The per_gpu event does not clobber the node's entry (a reference bug).
  EXPECT_EQ(s.resources.at("thread_pool/vm").cpu_percent, 60.0);
  EXPECT_EQ(s.resources.at("thread_pool/vm").memory_percent, 25.0);
  EXPECT_NE(s.to_json().find("\"thread_pool/vm\": {\"backend\": \"thread_pool\""),
            std::string::npos)
      << s.to_json();
}

}  // namespace
}  // namespace asyncflow
