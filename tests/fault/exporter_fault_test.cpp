// Exporter and subscriber faults (support/fault_exporters.hpp, support/fault_subscribers.hpp):
// failed exports, a stalled exporter (with each overflow policy, and past stop_timeout),
// exporter code that throws, subscribers that throw or block. Under each the engine's tasks
// all finish, and every record lost is counted — in losses(), summary(), the log and the
// result of shutdown() — to the record: exported + counted = emitted.
#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fault/fault_rig.hpp"
#include "fault/terminal_states.hpp"
#include "support/fault_exporters.hpp"
#include "support/fault_subscribers.hpp"
#include "support/log_capture.hpp"
#include "support/sync.hpp"

namespace asyncflow {
namespace {

using namespace std::chrono_literals;
using testing::FaultRig;
using testing::LogCapture;
using testing::run_tasks;
using testing::two_threads;

/// Lines of `log` containing `needle`, not counting stop's summary line (which repeats the
/// last error): how often a problem was said as it happened.
std::size_t said(LogCapture& log, const std::string& needle) {
  std::size_t n = 0;
  for (const auto& line : log.lines())
    n += line.find(needle) != std::string::npos && line.find(" ended: ") == std::string::npos;
  return n;
}

/// Records the reference exporter was offered: every event, span and metric snapshot.
std::uint64_t records_offered(const testing::RecordingExporter& e) {
  return e.events().size() + e.spans().size() + e.metrics().size();
}

TEST(ExporterFaults, AnExporterFailingEveryThirdCallLosesExactlyThoseRecords) {
  LogCapture log;
  auto flaky = std::make_shared<testing::FlakyExporter>(3);
  FaultRig rig(two_threads(), {.exporters = {flaky}});
  const auto tasks = run_tasks(*rig.flow, 200);
  EXPECT_FALSE(rig.flow->shutdown());
  const TelemetryLosses l = rig.telemetry->losses();
  ASSERT_GE(flaky->failed_calls(), 1u);
  EXPECT_EQ(l.export_failures, flaky->failed_calls());
  EXPECT_EQ(l.records_not_exported, flaky->refused_records());
  EXPECT_EQ(l.events_dropped, 0u);
  EXPECT_EQ(flaky->taken_records() + flaky->refused_records(), records_offered(*rig.exporter));
  EXPECT_EQ(rig.exporter->events().size(), rig.telemetry->processed_events());
  EXPECT_EQ(rig.telemetry->processed_events(), rig.lifecycle_points() + 2);
  const TelemetrySummary s = rig.telemetry->summary();
  EXPECT_EQ(s.losses.records_not_exported, l.records_not_exported);
  EXPECT_EQ(s.losses.export_failures, l.export_failures);
  EXPECT_NE(s.to_json().find("\"losses\""), std::string::npos);
  EXPECT_EQ(said(log, "exporter flaky failed"), 1u) << log.all();  // said once, then counted
  EXPECT_EQ(log.count(" ended: "), 1u) << log.all();
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(tasks, *rig.observer, &events);
}

// kBlock (the default): while the exporter stands still the bus fills and producers wait, so
// the tasks cannot all finish; once it answers again everything is recorded.
TEST(ExporterFaults, AStalledExporterHoldsTasksBackUnderTheBlockPolicyAndLosesNothing) {
  LogCapture log;
  auto stalled = std::make_shared<testing::StalledExporter>();
  FaultRig rig(two_threads(), {.exporters = {stalled}, .bus = {.capacity = 64, .max_batch = 16}});
  ASSERT_TRUE(stalled->entered.wait_for(30s));  // at SessionStarted, before any task
  testing::Gate finished;
  std::vector<AnyTask> tasks;
  std::thread producer([&] {
    tasks = run_tasks(*rig.flow, 100);  // some 600 events through a 64-event bus
    finished.open();
  });
  EXPECT_FALSE(finished.wait_for(200ms)) << "600 events passed a 64-event bus that nobody drains";
  stalled->release.open();
  ASSERT_TRUE(finished.wait_for(60s));
  producer.join();
  EXPECT_TRUE(rig.flow->shutdown());
  const TelemetryLosses l = rig.telemetry->losses();
  EXPECT_FALSE(l.lost_data()) << l.to_string();
  EXPECT_EQ(l.events_dropped, 0u);
  EXPECT_EQ(stalled->events(), rig.lifecycle_points() + 2);
  EXPECT_EQ(rig.telemetry->processed_events(), rig.lifecycle_points() + 2);
  EXPECT_TRUE(log.lines().empty()) << log.all();
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(tasks, *rig.observer, &events);
}

// kDropNewest: the tasks run on while the exporter stands still, and each event the full bus
// refused is counted: processed + dropped = emitted, exactly.
TEST(ExporterFaults, AStalledExporterUnderTheDropPolicyDropsAndCountsEachEvent) {
  LogCapture log;
  auto stalled = std::make_shared<testing::StalledExporter>();
  FaultRig rig(two_threads(),
               {.exporters = {stalled},
                .bus = {.capacity = 64, .overflow = OverflowPolicy::kDropNewest, .max_batch = 16}});
  ASSERT_TRUE(stalled->entered.wait_for(30s));
  const auto tasks = run_tasks(*rig.flow, 100);  // all finish with the exporter stalled
  stalled->release.open();
  EXPECT_FALSE(rig.flow->shutdown());
  const TelemetryLosses l = rig.telemetry->losses();
  const std::uint64_t emitted = rig.lifecycle_points() + 2;
  // What got through: SessionStarted (taken before the stall), a full bus (64) and SessionEnded
  // (emitted deferred, never refused).
  EXPECT_EQ(l.events_dropped, emitted - 64 - 2);
  EXPECT_EQ(rig.telemetry->processed_events() + l.events_dropped, emitted);
  EXPECT_EQ(stalled->events(), rig.telemetry->processed_events());
  EXPECT_EQ(rig.telemetry->summary().losses.events_dropped, l.events_dropped);
  EXPECT_EQ(said(log, "events dropped: the bus is full"), 1u) << log.all();
  EXPECT_EQ(log.count(" ended: "), 1u) << log.all();
  // The handles and the engine's observer saw every task end, telemetry or not.
  testing::expect_one_terminal_state_each(tasks, *rig.observer);
}

// stop() cannot interrupt an export call, and used to wait for one for ever: EventBus::stop()
// joined the dispatcher, which was inside it, so shutdown() hung as long as the exporter did.
// Now it returns once stop_timeout has run out, leaves the dispatcher's thread to finish that
// call, and counts everything the call kept from being recorded: the events never taken and
// the batch in the call (to the hung exporter and to the one after it); the other exporter
// still gets what stop sends (the session span).
TEST(ExporterFaults, AnExporterHungPastStopTimeoutIsLeftBehindAndEveryLossCounted) {
  LogCapture log;
  auto stalled = std::make_shared<testing::StalledExporter>();
  const std::shared_ptr<testing::Gate> destroyed = stalled->destroyed;
  auto rig = std::make_unique<FaultRig>(
      two_threads(), TelemetryOptions{.exporters = {stalled}, .stop_timeout = 0.2});
  ASSERT_TRUE(stalled->entered.wait_for(30s));  // stalled on [SessionStarted]
  const auto tasks = run_tasks(*rig->flow, 50);
  testing::Gate done;
  bool result = true;
  std::thread stopper([&] {
    result = rig->flow->shutdown();
    done.open();
  });
  EXPECT_TRUE(done.wait_for(60s)) << "shutdown() still waits for a hung exporter";
  EXPECT_FALSE(stalled->returned.is_open());  // it returned with the exporter still hung
  const TelemetryLosses l = rig->telemetry->losses();
  stalled->release.open();
  stopper.join();
  EXPECT_FALSE(result);
  const std::uint64_t emitted = rig->lifecycle_points() + 2;
  EXPECT_EQ(rig->telemetry->processed_events(), 1u);  // SessionStarted, in the hung call
  EXPECT_EQ(l.events_dropped, emitted - 1);           // never taken from the bus
  // SessionStarted, to the hung exporter (its call counts as failed) and to the recording
  // exporter after it, which the call kept it from.
  EXPECT_EQ(l.export_failures, 1u);
  EXPECT_EQ(l.records_not_exported, 2u) << l.to_string();
  EXPECT_TRUE(rig->exporter->events().empty());
  EXPECT_EQ(rig->exporter->spans().size(), 1u);  // the session span, closed at stop
  EXPECT_EQ(said(log, "still queued when stop_timeout"), 1u) << log.all();
  // Said once per exporter that lost the batch: the hung one and the one after it.
  EXPECT_EQ(said(log,
                 "1 event not exported to stalled: stop_timeout (0.2 s) ran out while a "
                 "call of stalled was still running"),
            1u)
      << log.all();
  EXPECT_EQ(said(log,
                 "1 event not exported to recording: stop_timeout (0.2 s) ran out while a "
                 "call of stalled was still running"),
            1u)
      << log.all();
  EXPECT_EQ(said(log, "stalled was still in a call when the session stopped: not shut down"), 1u)
      << log.all();
  testing::expect_one_terminal_state_each(tasks, *rig->observer);
  // Once the call returns, the abandoned thread records nothing more, and ends.
  ASSERT_TRUE(stalled->returned.wait_for(30s));
  stalled.reset();
  rig.reset();
  EXPECT_TRUE(destroyed->wait_for(30s)) << "the abandoned thread kept the session";
}

// The export calls are noexcept (exporter.hpp): exporter code that throws inside one ends the
// program through std::terminate, before the pipeline could catch anything. So the pipeline's
// answer to a broken exporter is the failing-result path (FlakyExporter above).
TEST(ExporterFaultsDeathTest, AnExporterThatThrowsFromAnExportCallEndsTheProgram) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto flow = testing::pool_engine(1);
        auto tm = flow->start_telemetry({.exporters = {std::make_shared<testing::ThrowingExporter>(
                                             testing::ThrowFrom::kExport)}});
        tm->flush();
      },
      "");
}

TEST(ExporterFaults, AnExporterWhoseNameThrowsFailsStartTelemetryAndLeavesTheEngineRunning) {
  auto flow = testing::pool_engine(2);
  auto throwing = std::make_shared<testing::ThrowingExporter>(testing::ThrowFrom::kName);
  EXPECT_THROW(flow->start_telemetry({.exporters = {throwing}}), std::runtime_error);
  auto f = flow->function_task("f", [](int i) { return i; });
  EXPECT_EQ(f(7).get(), 7);
  auto tm = flow->start_telemetry();  // the failed start left nothing behind
  EXPECT_EQ(f(8).get(), 8);
  EXPECT_TRUE(flow->shutdown());
  EXPECT_EQ(tm->task_count().completed, 1);
}

// An exporter whose losses() threw at stop was skipped without a word (an empty catch), so
// whatever it lost was neither counted nor said. Now the failure is noted and logged.
TEST(ExporterFaults, AnExporterWhoseLossesThrowIsReportedAtStop) {
  LogCapture log;
  auto throwing = std::make_shared<testing::ThrowingExporter>(testing::ThrowFrom::kLosses);
  FaultRig rig(two_threads(), {.exporters = {throwing}});
  run_tasks(*rig.flow, 5);
  rig.flow->shutdown();
  const TelemetryLosses l = rig.telemetry->losses();
  EXPECT_NE(l.last_error.find("throwing"), std::string::npos) << l.to_string();
  EXPECT_EQ(log.count("throwing"), 1u) << log.all();
}

TEST(SubscriberFaults, ASubscriberThatThrowsIsCountedPerEventAndLosesNothing) {
  LogCapture log;
  FaultRig rig(two_threads());
  testing::ThrowingSubscriber thrower("TaskCompleted");
  testing::ThrowingSubscriber good("(never)");
  // SessionStarted is processed before anyone subscribes: subscribers get every event after it.
  ASSERT_TRUE(rig.telemetry->flush());
  auto s1 = rig.telemetry->subscribe(thrower.subscriber());
  auto s2 = rig.telemetry->subscribe(good.subscriber());
  const auto tasks = run_tasks(*rig.flow, 50);
  EXPECT_TRUE(rig.flow->shutdown());  // an error is not a loss
  const TelemetryLosses l = rig.telemetry->losses();
  EXPECT_EQ(thrower.thrown(), 50u);
  EXPECT_EQ(l.subscriber_errors, 50u);
  EXPECT_EQ(rig.telemetry->subscriber_errors(), 50u);
  EXPECT_FALSE(l.lost_data());
  const std::uint64_t emitted = rig.lifecycle_points() + 2;
  EXPECT_EQ(thrower.seen(), emitted - 1);  // it still got every event after it threw
  EXPECT_EQ(good.seen(), emitted - 1);
  EXPECT_EQ(rig.exporter->events().size(), emitted);
  EXPECT_EQ(said(log, "threw std::runtime_error on TaskCompleted: subscriber bug"), 1u)
      << log.all();
  EXPECT_EQ(log.count(" ended: 50 subscriber errors"), 1u) << log.all();
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(tasks, *rig.observer, &events);
}

// A subscriber runs on a thread of its own: one that blocks holds up neither the tasks nor the
// exporters (until subscriber_queue events wait), and once it goes on it gets everything.
TEST(SubscriberFaults, ABlockedSubscriberHoldsUpNeitherTasksNorExporters) {
  FaultRig rig(two_threads());
  testing::BlockingSubscriber blocker("TaskStarted");
  ASSERT_TRUE(rig.telemetry->flush());  // SessionStarted, before the subscription
  auto sub = rig.telemetry->subscribe(blocker.subscriber());
  const auto tasks = run_tasks(*rig.flow, 100);
  ASSERT_TRUE(blocker.entered().wait_for(30s));
  const std::size_t points = rig.lifecycle_points();
  EXPECT_TRUE(rig.exporter->wait_for_events(points + 1, 30s));  // all but SessionEnded
  EXPECT_FALSE(blocker.returned().is_open());
  blocker.release().open();
  EXPECT_TRUE(rig.flow->shutdown());
  EXPECT_FALSE(rig.telemetry->losses().lost_data()) << rig.telemetry->losses().to_string();
  EXPECT_EQ(blocker.seen(), points + 1);  // all but SessionStarted
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(tasks, *rig.observer, &events);
}

// Blocked past stop_timeout: stop() returns at the deadline, leaves the subscriber's thread
// to finish that call, and counts what the subscribers were not given: no event is both
// undelivered and uncounted.
TEST(SubscriberFaults, ASubscriberBlockedPastStopTimeoutIsLeftBehindAndCounted) {
  LogCapture log;
  FaultRig rig(two_threads(), {.stop_timeout = 0.2});
  testing::BlockingSubscriber blocker("TaskCompleted");
  ASSERT_TRUE(rig.telemetry->flush());  // SessionStarted, before the subscription
  auto sub = rig.telemetry->subscribe(blocker.subscriber());
  const auto tasks = run_tasks(*rig.flow, 50);
  ASSERT_TRUE(blocker.entered().wait_for(30s));
  EXPECT_FALSE(rig.flow->shutdown());  // returns at the deadline, the subscriber still blocked
  const TelemetryLosses l = rig.telemetry->losses();
  EXPECT_GE(l.events_undelivered, 1u);
  EXPECT_LE(l.events_undelivered, rig.telemetry->processed_events());
  EXPECT_EQ(said(log, "not delivered to subscribers: a subscriber was still running"), 1u)
      << log.all();
  EXPECT_EQ(said(log, "its thread is left to finish that call"), 1u) << log.all();
  EXPECT_EQ(log.count(" ended: "), 1u) << log.all();
  blocker.release().open();
  ASSERT_TRUE(blocker.returned().wait_for(30s));
  EXPECT_GE(blocker.seen() + l.events_undelivered, rig.telemetry->processed_events() - 1);
  testing::expect_one_terminal_state_each(tasks, *rig.observer);
}

// The count of undelivered events is exact: when stop() gives up on a blocked callback it
// counted the whole batch in delivery (the events delivered before the blocked one too), and
// the abandoned thread went on delivering the rest of that batch once the callback returned.
// One run: 301 events processed after the subscription, 284 counted undelivered, 93
// delivered (377 in all). Now each event is begun or counted, never both.
TEST(SubscriberFaults, EventsDeliveredPlusUndeliveredAreExactlyTheEventsProcessed) {
  FaultRig rig(two_threads(), {.stop_timeout = 0.2});
  testing::BlockingSubscriber blocker("TaskCompleted");
  ASSERT_TRUE(rig.telemetry->flush());  // SessionStarted, before the subscription
  auto sub = rig.telemetry->subscribe(blocker.subscriber());
  run_tasks(*rig.flow, 50);
  ASSERT_TRUE(blocker.entered().wait_for(30s));
  EXPECT_FALSE(rig.flow->shutdown());
  const TelemetryLosses l = rig.telemetry->losses();
  blocker.release().open();
  ASSERT_TRUE(blocker.returned().wait_for(30s));
  // Once the blocked call returned, the abandoned thread must deliver nothing more.
  EXPECT_EQ(blocker.seen() + l.events_undelivered, rig.telemetry->processed_events() - 1);
}

// The subscribers' queue full at stop: the dispatcher waits for room in the hand-over until
// the deadline, where stop() may abandon it right there. Whichever comes first, each event is
// counted once: delivered, undelivered, or (refused by the full drop-newest bus) dropped.
TEST(SubscriberFaults, AFullSubscriberQueueAtStopTimeoutCountsEachEventOnce) {
  FaultRig rig(two_threads(),
               {.bus = {.capacity = 64, .overflow = OverflowPolicy::kDropNewest, .max_batch = 16},
                .subscriber_queue = 8,
                .stop_timeout = 0.2});
  // TaskCreated: the full bus may drop every later kind of event.
  testing::BlockingSubscriber blocker("TaskCreated");
  ASSERT_TRUE(rig.telemetry->flush());  // SessionStarted, before the subscription
  auto sub = rig.telemetry->subscribe(blocker.subscriber());
  run_tasks(*rig.flow, 50);
  ASSERT_TRUE(blocker.entered().wait_for(30s))
      << blocker.seen() << " seen; " << rig.telemetry->losses().to_string();
  EXPECT_FALSE(rig.flow->shutdown());
  const TelemetryLosses l = rig.telemetry->losses();
  blocker.release().open();
  ASSERT_TRUE(blocker.returned().wait_for(30s));
  const std::uint64_t processed = rig.telemetry->processed_events();
  EXPECT_GE(l.events_undelivered, 1u);
  EXPECT_EQ(blocker.seen() + l.events_undelivered, processed - 1) << l.to_string();
  EXPECT_EQ(processed + l.events_dropped, rig.lifecycle_points() + 2) << l.to_string();
}

}  // namespace
}  // namespace asyncflow
