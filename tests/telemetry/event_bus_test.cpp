// EventBus: ordering, exactly-once delivery, overflow policies, flush/stop, handler errors,
// re-entrant emits and batch bounds.
//
// The tests hold the dispatcher inside its first handler call with a Gate when they need a
// known queue state: the dispatcher has then taken exactly the events emitted before it
// entered, and the ring holds exactly what is emitted afterwards.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <asyncflow/common/error.hpp>
#include <asyncflow/telemetry/event_bus.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "support/sync.hpp"

namespace af = asyncflow;
using namespace std::chrono_literals;

namespace {

// Generous: sanitizer builds on two shared cores are slow, and a passing test never waits it.
constexpr auto kLong = 30s;

using asyncflow::testing::Gate;

/// An event carrying (producer, seq) as attributes.
af::Event make(std::int64_t seq, std::int64_t producer = 0) {
  return af::make_event(
      af::events::TaskSubmitted(),
      {.session_id = "s", .backend = "test", .attributes = {{"producer", producer}, {"seq", seq}}});
}

std::int64_t attr(const af::Event& e, const char* key) {
  return std::get<std::int64_t>(*e.attribute(key));
}

/// Records what the handler saw; the handler runs on the dispatcher, tests read elsewhere.
class Recorder {
 public:
  void record(std::vector<af::Event>& batch) {
    std::lock_guard lock(mu_);
    batch_sizes_.push_back(batch.size());
    for (const auto& e : batch) events_.emplace_back(attr(e, "producer"), attr(e, "seq"));
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::vector<std::int64_t> seqs() {
    std::vector<std::int64_t> out;
    for (const auto& [p, s] : events()) out.push_back(s);
    return out;
  }
  std::vector<std::size_t> batch_sizes() {
    std::lock_guard lock(mu_);
    return batch_sizes_;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::int64_t, std::int64_t>> events_;
  std::vector<std::size_t> batch_sizes_;
};

/// A handler that records every batch and, in its first call, reports `entered` and waits
/// for `release`.
struct GatedHandler {
  Recorder* recorder;
  Gate* entered;
  Gate* release;
  bool first = true;  // dispatcher thread only

  void operator()(std::vector<af::Event>& batch) {
    recorder->record(batch);
    if (first) {
      first = false;
      entered->open();
      release->wait();
    }
  }
};

std::vector<std::int64_t> iota(std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = from; i < to; ++i) v.push_back(i);
  return v;
}

/// Polls `done` until it holds or `timeout` passes (for conditions with no event to wait on).
template <class Pred>
bool eventually(Pred done, std::chrono::milliseconds timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace

TEST(EventBus, DeliversInFifoOrderFromOneProducer) {
  Recorder rec;
  af::EventBus bus({.capacity = 64, .overflow = af::OverflowPolicy::kBlock, .max_batch = 7},
                   [&](std::vector<af::Event>& b) { rec.record(b); });
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(bus.emit(make(i)));
  ASSERT_TRUE(bus.flush(std::chrono::nanoseconds::max()));  // "no deadline" must not overflow
  EXPECT_EQ(rec.seqs(), iota(0, 1000));
  EXPECT_EQ(bus.handled(), 1000u);
  EXPECT_EQ(bus.dropped(), 0u);
  EXPECT_EQ(bus.handler_errors(), 0u);
}

TEST(EventBus, ManyProducersDeliverEveryEventOnceInProducerOrder) {
  constexpr int kPerProducer = 5000;
  for (int producers : {2, 8}) {
    SCOPED_TRACE(producers);
    Recorder rec;
    // A small ring, so producers do wait for space.
    af::EventBus bus({.capacity = 128, .overflow = af::OverflowPolicy::kBlock, .max_batch = 32},
                     [&](std::vector<af::Event>& b) { rec.record(b); });
    std::vector<std::thread> threads;
    std::atomic<int> refused{0};
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([&, p] {
        for (int i = 0; i < kPerProducer; ++i) {
          if (!bus.emit(make(i, p))) refused.fetch_add(1);
        }
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_TRUE(bus.flush(kLong));
    EXPECT_EQ(refused.load(), 0);
    EXPECT_EQ(bus.dropped(), 0u);
    const auto events = rec.events();
    ASSERT_EQ(events.size(), static_cast<std::size_t>(producers * kPerProducer));
    std::vector<std::int64_t> next(static_cast<std::size_t>(producers), 0);
    for (const auto& [p, seq] : events) {
      ASSERT_EQ(seq, next[static_cast<std::size_t>(p)]) << "producer " << p;
      ++next[static_cast<std::size_t>(p)];
    }
    EXPECT_EQ(bus.handled(), events.size());
  }
}

TEST(EventBus, DropNewestDropsExactlyWhatDoesNotFit) {
  // Requested capacity -> effective capacity (power of two, at least 2; 0 is an error).
  const std::vector<std::pair<std::size_t, std::int64_t>> cases = {{1, 2}, {5, 8}, {64, 64}};
  for (const auto& [requested, capacity] : cases) {
    SCOPED_TRACE(requested);
    constexpr std::int64_t kExtra = 13;
    Recorder rec;
    Gate entered, release;
    af::EventBus bus({.capacity = requested, .overflow = af::OverflowPolicy::kDropNewest},
                     GatedHandler{&rec, &entered, &release});
    // The dispatcher takes event 0 and holds it; the ring is then empty.
    ASSERT_TRUE(bus.emit(make(0)));
    ASSERT_TRUE(entered.wait_for(kLong));
    std::int64_t accepted = 0;
    for (std::int64_t i = 1; i <= capacity + kExtra; ++i) accepted += bus.emit(make(i)) ? 1 : 0;
    EXPECT_EQ(accepted, capacity);
    EXPECT_EQ(bus.dropped(), static_cast<std::uint64_t>(kExtra));
    release.open();
    ASSERT_TRUE(bus.flush(kLong));
    EXPECT_EQ(rec.seqs(), iota(0, capacity + 1));  // the first `capacity` after event 0
    EXPECT_EQ(bus.handled(), static_cast<std::uint64_t>(capacity + 1));
    EXPECT_EQ(bus.dropped(), static_cast<std::uint64_t>(kExtra));
  }
}

TEST(EventBus, BlockPolicyWaitsForSpaceAndLosesNothing) {
  constexpr int kEvents = 100;
  constexpr int kCapacity = 4;
  Recorder rec;
  Gate entered, release;
  af::EventBus bus({.capacity = kCapacity, .overflow = af::OverflowPolicy::kBlock, .max_batch = 1},
                   GatedHandler{&rec, &entered, &release});
  std::atomic<int> accepted{0};
  std::thread producer([&] {
    for (int i = 0; i < kEvents; ++i) {
      if (bus.emit(make(i))) accepted.fetch_add(1);
    }
  });
  ASSERT_TRUE(entered.wait_for(kLong));
  // One event in the handler, kCapacity in the ring, and the producer stuck in the next emit.
  ASSERT_TRUE(eventually([&] { return accepted.load() == 1 + kCapacity; }));
  std::this_thread::sleep_for(50ms);  // give a wrongly non-blocking emit time to show
  EXPECT_EQ(accepted.load(), 1 + kCapacity);
  EXPECT_EQ(bus.dropped(), 0u);
  release.open();
  producer.join();
  ASSERT_TRUE(bus.flush(kLong));
  EXPECT_EQ(accepted.load(), kEvents);
  EXPECT_EQ(rec.seqs(), iota(0, kEvents));
  EXPECT_EQ(bus.dropped(), 0u);
}

TEST(EventBus, BlockPolicyKeepsUpWithASlowHandler) {
  constexpr int kEvents = 300;
  Recorder rec;
  af::EventBus bus({.capacity = 8, .overflow = af::OverflowPolicy::kBlock, .max_batch = 3},
                   [&](std::vector<af::Event>& b) {
                     rec.record(b);
                     std::this_thread::sleep_for(100us);  // slow consumer, not synchronization
                   });
  std::thread producer([&] {
    for (int i = 0; i < kEvents; ++i) ASSERT_TRUE(bus.emit(make(i)));
  });
  producer.join();
  ASSERT_TRUE(bus.flush(kLong));
  EXPECT_EQ(rec.seqs(), iota(0, kEvents));
  EXPECT_EQ(bus.dropped(), 0u);
}

TEST(EventBus, FlushWaitsUntilEarlierEventsAreHandled) {
  Recorder rec;
  Gate entered, release;
  af::EventBus bus({.capacity = 256}, GatedHandler{&rec, &entered, &release});
  ASSERT_TRUE(bus.emit(make(0)));
  ASSERT_TRUE(entered.wait_for(kLong));
  for (int i = 1; i < 100; ++i) ASSERT_TRUE(bus.emit(make(i)));
  EXPECT_FALSE(bus.flush(20ms));  // the handler is held: nothing after event 0 can finish
  std::thread opener([&] { release.open(); });
  EXPECT_TRUE(bus.flush(kLong));
  // flush() returned true: every event emitted before it has been through the handler.
  EXPECT_EQ(bus.handled(), 100u);
  EXPECT_EQ(rec.seqs(), iota(0, 100));
  opener.join();
  EXPECT_TRUE(bus.flush(0ns));  // nothing pending: true without waiting
}

TEST(EventBus, NoLostWakeUps) {
  // One event at a time, so the dispatcher goes to sleep between events as often as possible;
  // a lost wake-up shows as a flush that times out.
  for (auto policy : {af::OverflowPolicy::kDropNewest, af::OverflowPolicy::kBlock}) {
    std::atomic<std::uint64_t> seen{0};
    af::EventBus bus({.capacity = 2, .overflow = policy},
                     [&](std::vector<af::Event>& b) { seen.fetch_add(b.size()); });
    std::thread second([&] {
      for (int i = 0; i < 300; ++i) ASSERT_TRUE(bus.flush(kLong));
    });
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE(bus.emit(make(i)));
      ASSERT_TRUE(bus.flush(kLong));
      if (i % 50 == 0) std::this_thread::sleep_for(2ms);  // let the dispatcher fall asleep
    }
    second.join();
    EXPECT_EQ(seen.load(), 300u);
  }
}

TEST(EventBus, StopDrainsQueuedEvents) {
  Recorder rec;
  Gate entered, release;
  af::EventBus bus({.capacity = 1024, .max_batch = 16}, GatedHandler{&rec, &entered, &release});
  ASSERT_TRUE(bus.emit(make(0)));
  ASSERT_TRUE(entered.wait_for(kLong));
  for (int i = 1; i < 500; ++i) ASSERT_TRUE(bus.emit(make(i)));
  release.open();
  EXPECT_TRUE(bus.stop(std::chrono::nanoseconds::max()));
  EXPECT_FALSE(bus.running());
  EXPECT_EQ(bus.handled(), 500u);
  EXPECT_EQ(bus.dropped(), 0u);
  EXPECT_EQ(rec.seqs(), iota(0, 500));
}

TEST(EventBus, StopPastItsTimeoutDiscardsAndCountsTheRest) {
  Recorder rec;
  Gate entered, release;
  af::EventBus bus({.capacity = 16}, GatedHandler{&rec, &entered, &release});
  ASSERT_TRUE(bus.emit(make(0)));
  ASSERT_TRUE(entered.wait_for(kLong));
  for (int i = 1; i < 10; ++i) ASSERT_TRUE(bus.emit(make(i)));

  std::atomic<bool> stop_returned{false};
  bool stop_result = true;
  std::thread stopper([&] {
    stop_result = bus.stop(20ms);
    stop_returned = true;
  });
  ASSERT_TRUE(eventually([&] { return !bus.running(); }));
  EXPECT_FALSE(bus.emit(make(99)));  // refused while stopping, and counted
  EXPECT_EQ(bus.dropped(), 1u);
  // The handler stays stuck well past the 20 ms: stop() must wait for it, not abandon it.
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(stop_returned.load());
  release.open();
  stopper.join();
  EXPECT_FALSE(stop_result);
  EXPECT_EQ(rec.seqs(), iota(0, 1));  // only the event the handler already had
  EXPECT_EQ(bus.handled(), 1u);
  EXPECT_EQ(bus.dropped(), 1u + 9u);
  EXPECT_FALSE(bus.flush(kLong));  // discarded events were not handled
}

// HandlerAtStop::kAbandon: stop() returns at its timeout while the handler is stuck, counts
// every event the dispatcher never took, and the thread — which co-owns the handler and what
// it holds — finishes that call on its own, handles nothing more, and releases the handler.
TEST(EventBus, StopThatAbandonsAStuckHandlerReturnsAndCountsWhatWasNeverTaken) {
  // Opens `released` when the last owner lets it go.
  struct Shared {
    explicit Shared(std::shared_ptr<Gate> g) : released(std::move(g)) {}
    ~Shared() { released->open(); }
    Shared(const Shared&) = delete;
    Shared& operator=(const Shared&) = delete;
    std::shared_ptr<Gate> released;
    Recorder rec;
    Gate entered, release, returned;
    bool first = true;  // dispatcher thread only
  };
  auto released = std::make_shared<Gate>();
  auto shared = std::make_shared<Shared>(released);
  auto handler = [s = shared](std::vector<af::Event>& batch) {
    s->rec.record(batch);
    if (std::exchange(s->first, false)) {
      s->entered.open();
      s->release.wait();
      s->returned.open();
    }
  };
  bool stop_result = true;
  {
    af::EventBus bus({.capacity = 16}, std::move(handler));  // the bus holds the only copy
    ASSERT_TRUE(bus.emit(make(0)));
    ASSERT_TRUE(shared->entered.wait_for(kLong));
    for (int i = 1; i < 10; ++i) ASSERT_TRUE(bus.emit(make(i)));
    stop_result = bus.stop(20ms, af::HandlerAtStop::kAbandon);  // returns: no release yet
    EXPECT_FALSE(shared->returned.is_open());
    EXPECT_TRUE(bus.abandoned());
    EXPECT_FALSE(bus.running());
    EXPECT_EQ(bus.dropped(), 9u);  // the batch in the handler is the handler's to count
    EXPECT_EQ(bus.discarded(), 9u);
    EXPECT_EQ(bus.handled(), 0u);
    EXPECT_FALSE(bus.flush(kLong));  // returns at once: nothing is left to wait for
    EXPECT_FALSE(bus.emit(make(99)));
    EXPECT_EQ(bus.stop(kLong), stop_result);  // idempotent
  }                                           // the bus is gone; its thread is still in the handler
  EXPECT_FALSE(stop_result);
  shared->release.open();
  ASSERT_TRUE(shared->returned.wait_for(kLong));
  EXPECT_EQ(shared->rec.seqs(), iota(0, 1));  // nothing handled after the abandoned call
  // Only the thread holds the handler now: it drops it as it ends.
  shared.reset();
  EXPECT_TRUE(released->wait_for(kLong)) << "the abandoned thread kept its handler";
}

TEST(EventBus, StopThatMayAbandonJoinsAHandlerThatEndsInTime) {
  Recorder rec;
  af::EventBus bus({.capacity = 1024, .max_batch = 16},
                   [&](std::vector<af::Event>& b) { rec.record(b); });
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(bus.emit(make(i)));
  EXPECT_TRUE(bus.stop(kLong, af::HandlerAtStop::kAbandon));
  EXPECT_FALSE(bus.abandoned());
  EXPECT_EQ(bus.handled(), 500u);
  EXPECT_EQ(bus.dropped(), 0u);
  EXPECT_EQ(rec.seqs(), iota(0, 500));
}

TEST(EventBus, EmitAfterStopIsRefusedAndCounted) {
  std::atomic<std::uint64_t> seen{0};
  af::EventBus bus({}, [&](std::vector<af::Event>& b) { seen.fetch_add(b.size()); });
  EXPECT_TRUE(bus.running());
  ASSERT_TRUE(bus.emit(make(0)));
  EXPECT_TRUE(bus.stop(kLong));
  EXPECT_FALSE(bus.running());
  EXPECT_FALSE(bus.emit(make(1)));
  EXPECT_FALSE(bus.emit(make(2)));
  EXPECT_EQ(bus.dropped(), 2u);
  EXPECT_EQ(seen.load(), 1u);
  EXPECT_TRUE(bus.stop(0ns));  // idempotent: same result, nothing more to do
}

TEST(EventBus, ConcurrentStopsAllReturnTheSameResult) {
  for (int round = 0; round < 20; ++round) {
    std::atomic<std::uint64_t> seen{0};
    af::EventBus bus({.capacity = 4096, .max_batch = 8},
                     [&](std::vector<af::Event>& b) { seen.fetch_add(b.size()); });
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(bus.emit(make(i)));
    std::vector<std::thread> stoppers;
    std::atomic<int> ok{0};
    for (int t = 0; t < 4; ++t) {
      stoppers.emplace_back([&] { ok.fetch_add(bus.stop(kLong) ? 1 : 0); });
    }
    for (auto& t : stoppers) t.join();
    EXPECT_EQ(ok.load(), 4);
    EXPECT_EQ(seen.load(), 1000u);
    EXPECT_EQ(bus.dropped(), 0u);
  }
}

TEST(EventBus, HandlerExceptionIsCountedAndTheBusKeepsGoing) {
  Recorder rec;
  af::EventBus bus({.max_batch = 1}, [&](std::vector<af::Event>& b) {
    rec.record(b);
    if (attr(b[0], "seq") % 2 == 0) throw std::runtime_error("subscriber broke");
  });
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(bus.emit(make(i)));
  ASSERT_TRUE(bus.flush(kLong));
  EXPECT_EQ(bus.handler_errors(), 3u);  // events 0, 2, 4
  EXPECT_EQ(bus.handled(), 5u);
  EXPECT_EQ(rec.seqs(), iota(0, 5));
  ASSERT_TRUE(bus.emit(make(5)));
  ASSERT_TRUE(bus.flush(kLong));
  EXPECT_EQ(bus.handled(), 6u);
  EXPECT_EQ(bus.handler_errors(), 3u);
}

TEST(EventBus, ReentrantEmitUnderBlockIsDeferredNeitherLostNorDeadlocked) {
  constexpr int kCapacity = 4;
  constexpr int kInner = 10;
  Recorder rec;
  std::vector<bool> inner_results;  // dispatcher thread only until flush()
  std::atomic<bool> on_dispatcher{false};
  af::EventBus* self = nullptr;
  af::EventBus bus({.capacity = kCapacity, .overflow = af::OverflowPolicy::kBlock, .max_batch = 1},
                   [&](std::vector<af::Event>& b) {
                     rec.record(b);
                     if (attr(b[0], "producer") != 0) return;  // only the outer event re-emits
                     on_dispatcher = self->on_dispatcher_thread();
                     // Nothing drains while this runs: the first kCapacity fit the ring, the
                     // rest wait in the overflow list instead of waiting for this very thread.
                     for (int i = 0; i < kInner; ++i)
                       inner_results.push_back(self->emit(make(i, 1)));
                   });
  self = &bus;
  EXPECT_FALSE(bus.on_dispatcher_thread());
  ASSERT_TRUE(bus.emit(make(0, 0)));
  ASSERT_TRUE(bus.flush(kLong));
  EXPECT_TRUE(on_dispatcher.load());
  EXPECT_EQ(inner_results, std::vector<bool>(kInner, true));
  EXPECT_EQ(bus.dropped(), 0u);
  EXPECT_EQ(bus.deferred(), static_cast<std::uint64_t>(kInner - kCapacity));
  ASSERT_TRUE(bus.flush(kLong));  // the deferred inner events are handled too, in order
  EXPECT_EQ(bus.handled(), static_cast<std::uint64_t>(1 + kInner));
  std::vector<std::int64_t> inner;
  for (const auto& [producer, seq] : rec.events())
    if (producer == 1) inner.push_back(seq);
  EXPECT_EQ(inner, iota(0, kInner));
  EXPECT_TRUE(bus.stop(kLong));
}

TEST(EventBus, EmitDeferredNeverWaitsOnAFullRingAndFlushCoversIt) {
  Recorder rec;
  Gate entered, release;
  af::EventBus bus({.capacity = 8, .overflow = af::OverflowPolicy::kBlock, .max_batch = 4},
                   GatedHandler{&rec, &entered, &release});
  ASSERT_TRUE(bus.emit(make(0)));
  ASSERT_TRUE(entered.wait_for(kLong));
  // The dispatcher is held: 8 fill the ring, 2^16 more are deferred without waiting; beyond
  // that a thread emitting far more than it lets drain is refused, and counted.
  constexpr int kDeferred = 1 << 16;
  for (int i = 1; i <= 8 + kDeferred; ++i) ASSERT_TRUE(bus.emit_deferred(make(i)));
  EXPECT_EQ(bus.deferred(), static_cast<std::uint64_t>(kDeferred));
  EXPECT_FALSE(bus.emit_deferred(make(9 + kDeferred)));
  EXPECT_EQ(bus.dropped(), 1u);
  EXPECT_FALSE(bus.flush(std::chrono::milliseconds(20)));  // not handled yet
  release.open();
  ASSERT_TRUE(bus.flush(kLong));
  // In emission order: the ring's 8 (claimed first), then the deferred ones.
  EXPECT_EQ(rec.seqs(), iota(0, 9 + kDeferred));
  EXPECT_TRUE(bus.stop(kLong));
  EXPECT_FALSE(bus.emit_deferred(make(200)));  // refused after stop, and counted
  EXPECT_EQ(bus.dropped(), 2u);
}

TEST(EventBus, BatchesNeverExceedMaxBatch) {
  constexpr std::size_t kMaxBatch = 5;
  Recorder rec;
  Gate entered, release;
  af::EventBus bus({.capacity = 64, .max_batch = kMaxBatch},
                   GatedHandler{&rec, &entered, &release});
  ASSERT_TRUE(bus.emit(make(0)));
  ASSERT_TRUE(entered.wait_for(kLong));
  for (int i = 1; i <= 60; ++i) ASSERT_TRUE(bus.emit(make(i)));  // queued behind the gate
  release.open();
  ASSERT_TRUE(bus.flush(kLong));
  EXPECT_EQ(rec.seqs(), iota(0, 61));
  const auto sizes = rec.batch_sizes();
  for (std::size_t s : sizes) {
    EXPECT_GE(s, 1u);
    EXPECT_LE(s, kMaxBatch);
  }
  // 60 events were waiting when the gate opened: they come in full batches of 5.
  ASSERT_EQ(sizes.size(), 1u + 60u / kMaxBatch);
  EXPECT_EQ(sizes[1], kMaxBatch);
}

TEST(EventBus, InvalidOptionsThrow) {
  auto noop = [](std::vector<af::Event>&) {};
  EXPECT_THROW(af::EventBus({.max_batch = 0}, noop), af::Error);
  EXPECT_THROW(af::EventBus({.capacity = 0}, noop), af::Error);
  EXPECT_THROW(af::EventBus({.capacity = std::size_t{1} << 41}, noop), af::Error);
  try {
    af::EventBus bus({.capacity = 0}, noop);
  } catch (const af::Error& e) {
    EXPECT_NE(std::string(e.what()).find("capacity"), std::string::npos) << e.what();
  }
  EXPECT_THROW(af::EventBus({}, af::EventBus::BatchHandler{}), af::Error);
}

TEST(EventBus, InvalidLingerIsAClearError) {
  auto noop = [](std::vector<af::Event>&) {};
  for (double linger : {-0.001, 61.0, std::numeric_limits<double>::quiet_NaN()}) {
    try {
      af::EventBus bus({.linger = linger}, noop);
      ADD_FAILURE() << "linger " << linger << " was accepted";
    } catch (const af::Error& e) {
      EXPECT_NE(std::string(e.what()).find("BusOptions::linger"), std::string::npos) << e.what();
    }
  }
}

// The dispatcher lingers after a part batch: the events that follow wait for a whole batch
// (or the linger), so a trickle is handed over in batches, not one by one.
TEST(EventBus, APartBatchLingersUntilAWholeBatchIsReady) {
  Recorder rec;
  constexpr std::size_t kBatch = 8;
  af::EventBus bus({.max_batch = kBatch, .linger = 60},
                   [&](std::vector<af::Event>& b) { rec.record(b); });
  ASSERT_TRUE(bus.emit(make(0)));
  ASSERT_TRUE(eventually([&] { return rec.events().size() == 1; }));  // an idle bus: at once
  for (std::int64_t i = 1; i <= static_cast<std::int64_t>(kBatch); ++i) {
    ASSERT_TRUE(bus.emit(make(i)));
  }
  // Well before the 60 s linger: the 8th event completed the batch and woke the dispatcher.
  ASSERT_TRUE(eventually([&] { return rec.events().size() == kBatch + 1; }, 20s));
  EXPECT_EQ(rec.batch_sizes(), (std::vector<std::size_t>{1, kBatch}));
  EXPECT_EQ(rec.seqs(), iota(0, kBatch + 1));
}

TEST(EventBus, ALingerEndsOnItsOwn) {
  Recorder rec;
  af::EventBus bus({.max_batch = 512, .linger = 0.002},
                   [&](std::vector<af::Event>& b) { rec.record(b); });
  ASSERT_TRUE(bus.emit(make(0)));
  ASSERT_TRUE(eventually([&] { return rec.events().size() == 1; }));
  ASSERT_TRUE(bus.emit(make(1)));
  ASSERT_TRUE(bus.emit(make(2)));
  // No flush, no stop, far from a whole batch: only the linger's end hands these over.
  ASSERT_TRUE(eventually([&] { return rec.events().size() == 3; }));
  EXPECT_EQ(rec.seqs(), iota(0, 3));
}

// flush(), stop() and a producer waiting for room end a linger: none of them waits for it.
TEST(EventBus, FlushStopAndAFullRingDoNotWaitForTheLinger) {
  constexpr auto kLinger = 60s;  // far beyond any wait below
  {
    Recorder rec;
    af::EventBus bus({.max_batch = 512, .linger = 60},
                     [&](std::vector<af::Event>& b) { rec.record(b); });
    ASSERT_TRUE(bus.emit(make(0)));
    ASSERT_TRUE(eventually([&] { return rec.events().size() == 1; }));
    ASSERT_TRUE(bus.emit(make(1)));
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(bus.flush(kLong));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, kLinger / 2);
    EXPECT_EQ(rec.seqs(), iota(0, 2));
    ASSERT_TRUE(bus.emit(make(2)));
    ASSERT_TRUE(bus.stop(kLong));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, kLinger / 2);
    EXPECT_EQ(rec.seqs(), iota(0, 3));
  }
  {
    // A batch as large as the ring: only a full ring ends the linger, and a blocked producer
    // must not wait for its timeout.
    Recorder rec;
    af::EventBus bus(
        {.capacity = 8, .overflow = af::OverflowPolicy::kBlock, .max_batch = 8, .linger = 60},
        [&](std::vector<af::Event>& b) { rec.record(b); });
    const auto t0 = std::chrono::steady_clock::now();
    for (std::int64_t i = 0; i < 1000; ++i) ASSERT_TRUE(bus.emit(make(i)));
    ASSERT_TRUE(bus.flush(kLong));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, kLinger / 2);
    EXPECT_EQ(rec.seqs(), iota(0, 1000));
  }
}

TEST(EventBus, IdleDispatcherSleeps) {
  // The dispatcher's CPU time while the queue stays empty: a polling loop would burn most of
  // the idle period, a sleeping dispatcher next to nothing.
  std::atomic<long> tid{0};
  af::EventBus bus(
      {}, [&](std::vector<af::Event>&) { tid = static_cast<long>(::syscall(SYS_gettid)); });
  ASSERT_TRUE(bus.emit(make(0)));
  ASSERT_TRUE(bus.flush(kLong));
  auto cpu_ticks = [&] {
    std::ifstream in("/proc/self/task/" + std::to_string(tid.load()) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Fields after the parenthesized name: state is field 3, utime 14, stime 15.
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::vector<std::string> fields;
    for (std::string f; rest >> f;) fields.push_back(f);
    return std::stol(fields.at(11)) + std::stol(fields.at(12));
  };
  const long before = cpu_ticks();
  std::this_thread::sleep_for(300ms);  // the idle period being measured
  const long used = cpu_ticks() - before;
  EXPECT_LE(used, 3) << "clock ticks used by an idle dispatcher in 300 ms";
}
