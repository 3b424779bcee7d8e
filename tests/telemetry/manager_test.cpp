// TelemetryManager on its own (no engine, no exporter library): session events, subscribers,
// overflow, exporters, losses and how they are said, metrics rules, stop semantics, bad
// options.
#include <gtest/gtest.h>

#include <algorithm>
#include <asyncflow/common/error.hpp>
#include <asyncflow/telemetry/log.hpp>
#include <asyncflow/telemetry/manager.hpp>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "support/fake_exporters.hpp"
#include "support/gated_subscriber.hpp"
#include "support/log_capture.hpp"
#include "support/sync.hpp"
#include "support/temp_path.hpp"

namespace asyncflow {
namespace {

using namespace std::chrono_literals;
using testing::Gate;
using testing::RecordingExporter;

constexpr auto kLong = 30s;

using testing::LogCapture;

/// A metric reader that keeps the producer and the final snapshot.
class KeepingReader final : public MetricReader {
 public:
  void attach(std::shared_ptr<const MetricProducer> producer) override { producer_ = producer; }
  bool shutdown(std::chrono::microseconds /*timeout*/) noexcept override {
    final_ = producer_->collect();
    return true;
  }
  MetricsSnapshot final_;
  std::shared_ptr<const MetricProducer> producer_;
};

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

// The engine's path: events over a shared context, their ids and durations completed by the
// session off the emitting thread. Subscribers see them whole.
TEST(TelemetryManager, EventsOverASharedContextAreCompletedBeforeAnyoneSeesThem) {
  auto tm = TelemetryManager::start("s.ctx");
  auto rec = std::make_shared<Recorder>();
  tm->subscribe([rec](const Event& e) { (*rec)(e); });
  auto context = std::make_shared<EventContext>();
  context->session_id = tm->session_id();
  context->backend = "thread_pool";
  context->attributes = {{"executable", std::string("work")},
                         {"task_type", std::string("function")}};
  ASSERT_TRUE(tm->emit(events::TaskStarted(), context, "task.000001"));
  ASSERT_TRUE(tm->emit(events::TaskCompleted(), context, "task.000001"));  // duration: NaN
  ASSERT_TRUE(tm->emit(events::TaskStarted(), context, "task.000002"));
  ASSERT_TRUE(tm->emit(events::TaskCompleted(), context, "task.000002", {0.25}));  // as given
  // A type with a non-double field has no NaN default: its values are required.
  EXPECT_THROW(tm->emit(events::TaskFailed(), context, "task.000003"), Error);
  ASSERT_TRUE(tm->flush(30));
  std::vector<Event> seen;
  {
    std::lock_guard lock(rec->mu);
    for (const Event& e : rec->seen)
      if (e.task_id()) seen.push_back(e);
  }
  ASSERT_EQ(seen.size(), 4u);
  std::vector<std::string> ids;
  for (const Event& e : seen) {
    ASSERT_EQ(e.event_id().size(), 32u) << e.type();
    EXPECT_TRUE(e.has_generated_id());
    EXPECT_EQ(e.event_id().find_first_not_of("0123456789abcdef"), std::string_view::npos);
    EXPECT_EQ(e.values().size(), e.event_type()->fields().size()) << e.type();
    ids.emplace_back(e.event_id());
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end()) << "event ids repeat";
  const double d1 = seen[1].number("duration_seconds");
  EXPECT_FALSE(std::isnan(d1));
  EXPECT_NEAR(d1, seen[1].event_time() - seen[0].event_time(), 1e-6);
  EXPECT_EQ(seen[3].number("duration_seconds"), 0.25);
  EXPECT_TRUE(tm->stop());
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

TEST(TelemetryManager, DropNewestIsAnExplicitChoiceThatCountsExactlyAndSaysSo) {
  LogCapture log;
  auto exporter = std::make_shared<RecordingExporter>();
  TelemetryOptions opts;
  opts.bus.capacity = 16;
  opts.bus.max_batch = 1;
  opts.bus.overflow = OverflowPolicy::kDropNewest;
  opts.exporters = {exporter};
  opts.resource_poll_interval = 0;  // every event counted: no node samples among them
  auto tm = TelemetryManager::start("s.4", opts);
  ASSERT_TRUE(tm->flush());  // SessionStarted out of the way
  exporter->hold();
  ASSERT_TRUE(tm->emit(events::TaskSubmitted(), task_base("", "gate")));
  ASSERT_TRUE(exporter->entered.wait_for(kLong));
  // The dispatcher holds the gate event; the queue is empty with room for exactly 16.
  int refused = 0;
  for (int i = 0; i < 16 + 1000; ++i) {
    if (!tm->emit(events::TaskSubmitted(), task_base("", "flood"))) ++refused;
  }
  EXPECT_EQ(refused, 1000);
  EXPECT_EQ(tm->dropped_events(), 1000u);
  // Said once when it first happened, with the policy that caused it.
  EXPECT_EQ(log.count("events dropped: the bus is full (capacity 16, overflow policy kDropNewest)"),
            1u);
  exporter->release.open();
  EXPECT_FALSE(tm->stop());  // events were lost: stop reports it
  EXPECT_EQ(tm->dropped_events(), 1000u);
  EXPECT_EQ(tm->read_metrics().total("telemetry_events_dropped"), 1000.0);
  EXPECT_EQ(tm->task_count().submitted, 17);
  const TelemetrySummary summary = tm->summary();
  EXPECT_EQ(summary.losses.events_dropped, 1000u);
  EXPECT_NE(summary.to_json().find("\"losses\": {\"events_dropped\": 1000"), std::string::npos)
      << summary.to_json();
  // And summed up at stop.
  EXPECT_EQ(log.count("session s.4 ended: 1000 events dropped"), 1u);
}

TEST(TelemetryManager, TheDefaultBusLosesNothingUnderAFlood) {
  LogCapture log;
  auto exporter = std::make_shared<RecordingExporter>();
  TelemetryOptions opts;
  opts.bus.capacity = 64;  // small, so producers do wait
  opts.exporters = {exporter};
  opts.resource_poll_interval = 0;  // every event counted: no node samples among them
  auto tm = TelemetryManager::start("s.flood", opts);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i)
        ASSERT_TRUE(tm->emit(events::TaskSubmitted(), task_base("", "flood")));
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(tm->stop());
  EXPECT_EQ(tm->dropped_events(), 0u);
  EXPECT_FALSE(tm->losses().lost_data());
  // Every event, plus SessionStarted and SessionEnded.
  EXPECT_EQ(exporter->event_count(), static_cast<std::size_t>(kThreads * kPerThread + 2));
  EXPECT_EQ(tm->task_count().submitted, kThreads * kPerThread);
  EXPECT_TRUE(log.lines().empty());
}

TEST(TelemetryManager, ASlowSubscriberDoesNotStarveTheExporters) {
  auto exporter = std::make_shared<RecordingExporter>();
  TelemetryOptions opts;
  opts.exporters = {exporter};
  auto tm = TelemetryManager::start("s.slow", opts);
  // Counts TaskSubmitted only: SessionStarted may come before the subscription.
  testing::GatedSubscriber stuck("TaskSubmitted");
  tm->subscribe(stuck.subscriber());
  constexpr int kEvents = 5000;
  for (int i = 0; i < kEvents; ++i)
    ASSERT_TRUE(tm->emit(events::TaskSubmitted(), task_base("", "t")));
  ASSERT_TRUE(stuck.entered().wait_for(kLong));
  // The subscriber holds its first event; the exporter got every event regardless.
  EXPECT_TRUE(exporter->wait_for_events(static_cast<std::size_t>(kEvents + 1), kLong));
  EXPECT_EQ(stuck.seen(), 1);
  stuck.release().open();
  ASSERT_TRUE(tm->flush());
  EXPECT_EQ(stuck.seen(), kEvents);  // and the subscriber got them all in the end
  EXPECT_TRUE(tm->stop());
}

TEST(TelemetryManager, StopTimeoutHoldsWhileASubscriberIsStuck) {
  LogCapture log;
  TelemetryOptions opts;
  opts.stop_timeout = 0.3;
  auto tm = TelemetryManager::start("s.stuck", opts);
  testing::GatedSubscriber stuck("TaskSubmitted");
  tm->subscribe(stuck.subscriber());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(tm->emit(events::TaskSubmitted(), task_base("", "t")));
  ASSERT_TRUE(stuck.entered().wait_for(kLong));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(tm->stop());
  const auto took = std::chrono::steady_clock::now() - start;
  // 0.3 s set: well below what the stuck subscriber would take (forever), with room for a
  // slow sanitizer build.
  EXPECT_LT(took, 5s);
  const TelemetryLosses l = tm->losses();
  EXPECT_GE(l.events_undelivered, 99u);  // the rest of the TaskSubmitted, SessionEnded
  EXPECT_EQ(l.events_dropped, 0u);       // every event was processed and exported
  EXPECT_GE(log.count("a subscriber was still running when stop_timeout ran out"), 1u);
  stuck.release().open();  // the subscriber's thread finishes its call and ends
}

TEST(TelemetryManager, StopFromASubscriberIsRefusedWithAClearError) {
  LogCapture log;
  auto tm = TelemetryManager::start("s.self");
  std::atomic<bool> flushed{true};
  Gate done;
  tm->subscribe([&, raw = tm.get()](const Event& e) {
    if (e.type() != "TaskSubmitted") return;
    flushed = raw->flush(1.0);  // would wait on itself: refused at once
    raw->stop();                // throws: caught and counted as this subscriber's error
  });
  tm->subscribe([&](const Event& e) {
    if (e.type() == "TaskSubmitted") done.open();
  });
  ASSERT_TRUE(tm->emit(events::TaskSubmitted(), task_base("", "t")));
  ASSERT_TRUE(done.wait_for(kLong));
  ASSERT_TRUE(tm->flush());
  EXPECT_FALSE(flushed.load());
  EXPECT_TRUE(tm->running());
  EXPECT_EQ(tm->subscriber_errors(), 1u);
  EXPECT_EQ(log.count("stop() called from a telemetry subscriber or exporter of session s.self"),
            1u);
  // From an ordinary thread it works, and the session ends properly.
  EXPECT_TRUE(tm->stop());
  EXPECT_EQ(tm->summary().losses.subscriber_errors, 1u);
}

TEST(TelemetryManager, StopReleasesCallbacksSoASubscriberHoldingTheManagerLeaksNothing) {
  std::weak_ptr<TelemetryManager> weak;
  {
    auto exporter = std::make_shared<RecordingExporter>();
    TelemetryOptions opts;
    opts.exporters = {exporter};
    auto tm = TelemetryManager::start("s.cycle", std::move(opts));
    weak = tm;
    // The callback owns the manager: manager -> subscriber -> manager.
    tm->subscribe([tm](const Event&) { (void)tm->running(); });
    ASSERT_TRUE(tm->emit(events::TaskSubmitted(), task_base("", "t")));
    EXPECT_TRUE(tm->stop());
    EXPECT_TRUE(tm->options().exporters.empty());
    EXPECT_EQ(exporter->shutdowns(), 1);
    EXPECT_EQ(exporter.use_count(), 1);  // the session let go of its exporter
  }
  EXPECT_TRUE(weak.expired());
}

TEST(TelemetryManager, EmitFromASubscriberNeverDeadlocksAndLosesNothing) {
  static const auto Echo = define_event("test.Echo", {{"n", FieldType::kInt}});
  auto exporter = std::make_shared<RecordingExporter>();
  TelemetryOptions opts;
  opts.bus.capacity = 16;  // everything is full at once
  opts.subscriber_queue = 16;
  opts.exporters = {exporter};
  auto tm = TelemetryManager::start("s.echo", opts);
  std::atomic<int> echoed{0};
  tm->subscribe([&, raw = tm.get()](const Event& e) {
    if (e.type() != "TaskSubmitted") return;
    ASSERT_TRUE(raw->emit(Echo, EventBase{}, {{"n", std::int64_t{echoed++}}}));
  });
  constexpr int kEvents = 3000;
  for (int i = 0; i < kEvents; ++i)
    ASSERT_TRUE(tm->emit(events::TaskSubmitted(), task_base("", "t")));
  ASSERT_TRUE(tm->flush(60));
  EXPECT_TRUE(tm->stop());
  EXPECT_EQ(echoed.load(), kEvents);
  std::size_t echoes = 0;
  for (const Event& e : exporter->events()) echoes += e.type() == "test.Echo";
  EXPECT_EQ(echoes, static_cast<std::size_t>(kEvents));
  EXPECT_EQ(tm->dropped_events(), 0u);
}

TEST(TelemetryManager, FailedExportsAreCountedSaidOnceAndFailTheStop) {
  LogCapture log;
  auto failing = std::make_shared<testing::FailingExporter>();
  auto good = std::make_shared<RecordingExporter>();
  TelemetryOptions opts;
  opts.exporters = {failing, good};
  opts.resource_poll_interval = 0;  // every event counted: no node samples among them
  auto tm = TelemetryManager::start("s.fail", opts);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(tm->emit(events::TaskSubmitted(), task_base("", "t")));
  EXPECT_FALSE(tm->flush());  // an exporter failed
  EXPECT_FALSE(tm->stop());
  const TelemetryLosses l = tm->losses();
  EXPECT_GE(l.export_failures, 1u);
  // Every event (50, SessionStarted, SessionEnded) and the session and unfinished task spans.
  EXPECT_GE(l.records_not_exported, 52u);
  EXPECT_EQ(good->event_count(), 52u);  // the other exporter got everything
  EXPECT_EQ(log.count("exporter failing failed (failure)"), 1u);
  EXPECT_NE(l.to_string().find("records not exported"), std::string::npos) << l.to_string();
}

TEST(TelemetryManager, CheckpointPathWithoutTheJsonlExporterIsAClearError) {
  // This test binary links telemetry alone: there is no checkpoint exporter to build.
  TelemetryOptions opts;
  opts.checkpoint_path = asyncflow::testing::fresh_temp_path("no_exporter");
  try {
    TelemetryManager::start("s.noexp", opts);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no checkpoint exporter is linked"), std::string::npos)
        << e.what();
  }
}

TEST(TelemetryManager, CustomEventsTakeTheTaskAndWorkflowTheyAreEmittedIn) {
  auto exporter = std::make_shared<RecordingExporter>();
  TelemetryOptions opts;
  opts.exporters = {exporter};
  auto tm = TelemetryManager::start("s.ctx", opts, [] {
    return EmitContext{"task.000007", "wf-outer"};
  });
  static const auto Note = define_event("test.Note");
  ASSERT_TRUE(tm->emit(Note, EventBase{}));
  EventBase own;
  own.task_id = "task.000001";
  own.attributes = {{"asyncflow.workflow_id", std::string("mine")}};
  ASSERT_TRUE(tm->emit(Note, own));
  ASSERT_TRUE(tm->emit(events::TaskSubmitted(), task_base("", "task.000002")));  // built-in
  EXPECT_TRUE(tm->stop());
  std::vector<Event> notes;
  const Event* submitted = nullptr;
  const auto all = exporter->events();
  for (const Event& e : all) {
    if (e.type() == "test.Note") notes.push_back(e);
    if (e.type() == "TaskSubmitted") submitted = &e;
  }
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_EQ(notes[0].task_id(), "task.000007");
  EXPECT_EQ(std::get<std::string>(*notes[0].attribute("asyncflow.workflow_id")), "wf-outer");
  EXPECT_EQ(notes[1].task_id(), "task.000001");  // what an event says is kept
  EXPECT_EQ(std::get<std::string>(*notes[1].attribute("asyncflow.workflow_id")), "mine");
  ASSERT_NE(submitted, nullptr);
  EXPECT_EQ(submitted->attribute("asyncflow.workflow_id"), nullptr);
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
        ASSERT_TRUE(
            tm->emit(Tick, EventBase{}, {{"thread", std::int64_t{t}}, {"n", std::int64_t{n}}}));
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
  auto exporter = std::make_shared<RecordingExporter>();
  auto reader = std::make_shared<KeepingReader>();
  TelemetryOptions opts;
  opts.exporters = {exporter};
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
  // t2 never reached a backend, yet it left the graph: it counts as submitted, so the counts
  // add up (submitted = completed + failed + canceled + running).
  EXPECT_EQ(c.submitted, 2);
  EXPECT_EQ(c.completed, 1);
  EXPECT_EQ(c.canceled, 1);
  EXPECT_EQ(c.running, 0);
  const MetricsSnapshot m = reader->final_;
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
  auto spans_of = [&](const std::string& task) {
    std::vector<SpanData> out;
    for (const SpanData& s : exporter->spans())
      if (s.text("task_id") == task && s.text("session_id") == "s.6") out.push_back(s);
    return out;
  };
  auto spans = spans_of("t2");
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].status, SpanStatus::kError);
  EXPECT_EQ(spans[0].text("status"), "canceled");
  auto ok = spans_of("t1");
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].status, SpanStatus::kOk);
  EXPECT_EQ(tm->read_traces(std::nullopt, "t1").size(), 1u);
  EXPECT_TRUE(tm->read_traces("other-session").empty());
}

// span_history bounds what read_traces()/task_spans() keep: the newest spans, oldest first,
// also after the ring of kept spans has wrapped around several times.
TEST(TelemetryManager, SpanHistoryKeepsTheNewestSpansInOrder) {
  // Built with append, not "t" + s: GCC 12 reports a false -Wrestrict (GCC bug 105651).
  auto task = [](std::size_t i) { return std::string("t").append(std::to_string(i)); };
  // 300: the first block grows past its first reserve, then wraps; 45,000: three blocks of
  // about 20,000 spans (the first one grown, the last one partial), then wraps.
  for (const std::size_t history : {0, 1, 3, 300, 45000}) {
    TelemetryOptions opts;
    opts.span_history = history;
    auto tm = TelemetryManager::start("s.h", opts);
    constexpr int kTasks = 50000;
    for (int i = 0; i < kTasks; ++i) {
      const std::string id = task(static_cast<std::size_t>(i));
      ASSERT_TRUE(tm->emit(events::TaskStarted(), task_base("", id)));
      ASSERT_TRUE(
          tm->emit(events::TaskCompleted(), task_base("", id), {{"duration_seconds", 0.5}}));
    }
    ASSERT_TRUE(tm->flush(30));
    const std::vector<TaskSpanInfo> kept = tm->task_spans();
    ASSERT_EQ(kept.size(), history) << "span_history " << history;
    for (std::size_t k = 0; k < kept.size(); ++k) {
      EXPECT_EQ(kept[k].task_id, task(kTasks - history + k));
    }
    if (history > 0) {
      EXPECT_EQ(tm->read_traces(std::nullopt, task(kTasks - 1)).size(), 1u);
    }
    EXPECT_TRUE(tm->read_traces(std::nullopt, "t0").empty());
    const TelemetrySummary summary = tm->summary();
    ASSERT_TRUE(summary.duration.has_value());
    EXPECT_EQ(summary.duration->count, std::uint64_t{kTasks});  // durations are all kept
    ASSERT_TRUE(tm->stop());
  }
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

TEST(TelemetryManager, BadOptionsAreClearErrors) {
  TelemetryOptions a;
  a.resource_poll_interval = -1;
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
  TelemetryOptions zero;
  zero.bus.capacity = 0;  // was silently 2
  try {
    TelemetryManager::start("s.9", zero);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("capacity"), std::string::npos) << e.what();
  }
  TelemetryOptions d;
  d.subscriber_queue = 0;
  EXPECT_THROW(TelemetryManager::start("s.9", d), Error);
  TelemetryOptions nulls;
  nulls.exporters = {nullptr};
  EXPECT_THROW(TelemetryManager::start("s.9", nulls), Error);
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
