// The subscribers' thread (subscribers.hpp).
//
// Thread safety. The dispatcher (deliver) and the delivery thread meet only in State, under
// State::mu; callbacks run with no lock held but Registry::delivering, which unsubscribe()
// takes to wait for a batch in flight. Invariants:
//  1. handed - finished = the events in `queue` plus the batch the thread is delivering.
//  2. A callback list taken by snapshot() stays alive (and so every callback in it) until the
//     thread drops it, even when stop() cleared the registry or the stage was destroyed: the
//     thread owns its State through a shared_ptr.
//  3. Exact accounting when stop() gives up on the thread. `started` counts the events of the
//     batch in delivery whose delivery has begun, with kAbandoned set by stop(): the thread
//     begins an event only by a CAS that expects the bit clear, so after stop()'s fetch_or
//     no further event is begun, and the value it returned says exactly how many of the
//     batch were (the one a blocked callback holds among them). Every other event stop()
//     counts undelivered, and the thread delivers none of them.
#include "subscribers.hpp"

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "asyncflow/common/error.hpp"
#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/log.hpp"
#include "common/exception_text.hpp"

namespace asyncflow {

struct Subscription::Registry {
  struct Entry {
    std::uint64_t id = 0;
    std::function<void(const Event&)> callback;
    std::atomic<bool> active{true};  // cleared by unsubscribe(): also stops the batch in flight
    bool reported = false;           // first exception said; delivery thread only
  };
  using List = std::vector<std::shared_ptr<Entry>>;

  Mutex mu;
  std::uint64_t next_id ASYNCFLOW_GUARDED_BY(mu) = 1;
  std::shared_ptr<const List> list ASYNCFLOW_GUARDED_BY(mu) = std::make_shared<const List>();
  std::atomic<std::size_t> count{0};
  // Held by the delivery thread while it calls callbacks: unsubscribe() waits on it.
  Mutex delivering;
  std::atomic<std::thread::id> delivery_thread{};

  std::shared_ptr<const List> snapshot() {
    MutexLock lock(mu);
    return list;
  }
  std::uint64_t add(std::function<void(const Event&)> callback) {
    auto entry = std::make_shared<Entry>();
    entry->callback = std::move(callback);
    MutexLock lock(mu);
    entry->id = next_id++;
    auto next = std::make_shared<List>(*list);
    next->push_back(std::move(entry));
    list = std::move(next);
    count.store(list->size(), std::memory_order_release);
    return next_id - 1;
  }
  void remove(std::uint64_t id) {
    MutexLock lock(mu);
    auto next = std::make_shared<List>();
    for (const auto& e : *list) {
      if (e->id != id) {
        next->push_back(e);
      } else {
        e->active.store(false, std::memory_order_relaxed);
      }
    }
    list = std::move(next);
    count.store(list->size(), std::memory_order_release);
  }
  void clear() {
    std::shared_ptr<const List> old;
    MutexLock lock(mu);
    old = std::exchange(list, std::make_shared<const List>());
    for (const auto& e : *old) e->active.store(false, std::memory_order_relaxed);
    count.store(0, std::memory_order_release);
  }
};

void Subscription::unsubscribe() {
  auto registry = registry_.lock();
  if (!registry) return;
  registry->remove(id_);
  // Wait for a batch in flight (it may still hold the old list), unless we are that batch.
  if (registry->delivery_thread.load() != std::this_thread::get_id()) {
    MutexLock wait(registry->delivering);
  }
  registry_.reset();
}

bool Subscription::active() const {
  auto registry = registry_.lock();
  if (!registry) return false;
  auto list = registry->snapshot();
  for (const auto& e : *list) {
    if (e->id == id_) return true;
  }
  return false;
}

namespace detail {

struct SubscriberStage::State {
  State(std::size_t max, std::shared_ptr<LossCounters> l)
      : registry(std::make_shared<Subscription::Registry>()),
        max_queued(max),
        losses(std::move(l)) {}

  void run();
  /// Calls every subscriber for each event of `batch`; returns how many events were delivered
  /// (fewer when the stop deadline passed in between).
  std::size_t call_subscribers(const std::vector<Event>& batch);
  bool past_deadline() const noexcept {
    return has_deadline.load(std::memory_order_acquire) && Clock::now() >= deadline_value();
  }
  Clock::time_point deadline_value() const noexcept {
    return Clock::time_point(Clock::duration(deadline_ticks.load(std::memory_order_acquire)));
  }

  const std::shared_ptr<Subscription::Registry> registry;
  const std::size_t max_queued;
  const std::shared_ptr<LossCounters> losses;

  /// Begins the delivery of the batch's next event; false once stop() abandoned the thread.
  bool begin_event() noexcept {
    std::uint64_t v = started.load(std::memory_order_acquire);
    while ((v & kAbandoned) == 0) {
      if (started.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) return true;
    }
    return false;
  }

  static constexpr std::uint64_t kAbandoned = std::uint64_t{1} << 63;
  // Events of the batch in delivery begun | kAbandoned (invariant 3). Reset under mu.
  std::atomic<std::uint64_t> started{0};

  std::atomic<bool> has_deadline{false};
  std::atomic<Clock::rep> deadline_ticks{Clock::time_point::max().time_since_epoch().count()};

  Mutex mu;
  CondVar work_cv;  // the thread waits for batches / stop
  CondVar room_cv;  // deliver() waits for room
  CondVar done_cv;  // flush() and stop() wait for progress
  std::deque<std::vector<Event>> queue ASYNCFLOW_GUARDED_BY(mu);
  std::vector<std::vector<Event>> spare ASYNCFLOW_GUARDED_BY(mu);  // emptied, for their capacity
  std::size_t queued ASYNCFLOW_GUARDED_BY(mu) = 0;                 // events in queue + in delivery
  std::uint64_t handed ASYNCFLOW_GUARDED_BY(mu) = 0;               // events handed over
  std::uint64_t finished ASYNCFLOW_GUARDED_BY(mu) = 0;             // delivered or discarded
  bool stopping ASYNCFLOW_GUARDED_BY(mu) = false;
  bool abandoned ASYNCFLOW_GUARDED_BY(mu) = false;  // stop() gave up on the thread: discard
  // refuse_hand_overs() came: deliver() hands nothing over and counts nothing.
  bool refused ASYNCFLOW_GUARDED_BY(mu) = false;
  // deliver() calls whose outcome (queued, counted undelivered, or nobody to deliver to) is in.
  std::uint64_t completed_hand_overs ASYNCFLOW_GUARDED_BY(mu) = 0;
  bool thread_done ASYNCFLOW_GUARDED_BY(mu) = false;
  std::thread thread ASYNCFLOW_GUARDED_BY(mu);  // started by the first subscribe()
};

std::size_t SubscriberStage::State::call_subscribers(const std::vector<Event>& batch) {
  auto subs = registry->snapshot();
  MutexLock delivering(registry->delivering);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    // Read per event: stop() may set the deadline while a batch is in delivery.
    if (past_deadline()) return i;
    if (!begin_event()) return i;  // stop() counted the rest undelivered
    const Event& e = batch[i];
    for (const auto& s : *subs) {
      if (!s->active.load(std::memory_order_relaxed)) continue;
      try {
        s->callback(e);
      } catch (...) {
        losses->subscriber_error();
        if (!s->reported) {
          s->reported = true;
          auto [type, what] = describe_exception(std::current_exception());
          log_message(LogLevel::kWarning, "subscriber " + std::to_string(s->id) + " threw " + type +
                                              " on " + e.type() +
                                              (what.empty() ? "" : ": " + what) +
                                              " (further errors from it are only counted)");
        }
      }
    }
  }
  return batch.size();
}

void SubscriberStage::State::run() {
  pthread_setname_np(pthread_self(), "af-subscribers");
  registry->delivery_thread.store(std::this_thread::get_id());
  MutexLock lock(mu);
  for (;;) {
    work_cv.wait(mu, [this]() ASYNCFLOW_REQUIRES(mu) { return !queue.empty() || stopping; });
    if (queue.empty()) break;
    std::vector<Event> batch = std::move(queue.front());
    queue.pop_front();
    const bool discard = abandoned;
    lock.unlock();
    const std::size_t delivered = discard ? 0 : call_subscribers(batch);
    lock.lock();
    if (delivered < batch.size() && !abandoned) {
      losses->undelivered(batch.size() - delivered,
                          "stop_timeout ran out while the subscribers were behind");
    }
    queued -= batch.size();
    finished += batch.size();
    if (!abandoned) started.store(0, std::memory_order_release);  // with queued (invariant 3)
    batch.clear();
    if (spare.size() < 4) spare.push_back(std::move(batch));
    room_cv.notify_all();
    done_cv.notify_all();
  }
  thread_done = true;
  registry->delivery_thread.store(std::thread::id());
  done_cv.notify_all();
}

SubscriberStage::SubscriberStage(std::size_t max_queued, std::shared_ptr<LossCounters> losses)
    : state_(std::make_shared<State>(max_queued, std::move(losses))) {}

SubscriberStage::~SubscriberStage() {
  stop(Clock::now());
}

Subscription SubscriberStage::subscribe(std::function<void(const Event&)> callback) {
  if (!callback) throw Error("subscribe: empty callback");
  State& s = *state_;
  {
    MutexLock lock(s.mu);
    if (s.stopping) throw Error("subscribe: the telemetry session has stopped");
    if (!s.thread.joinable()) s.thread = std::thread([state = state_] { state->run(); });
  }
  const std::uint64_t id = s.registry->add(std::move(callback));
  return Subscription(s.registry, id);
}

void SubscriberStage::deliver(std::vector<Event>& batch) noexcept {
  State& s = *state_;
  if (batch.empty()) return;
  MutexLock lock(s.mu);
  if (s.refused) return;  // counted by the pipeline (refuse_hand_overs())
  // No subscriber, or stop() ran: nobody to deliver to.
  if (s.registry->count.load(std::memory_order_acquire) == 0 || !s.thread.joinable() ||
      s.stopping) {
    ++s.completed_hand_overs;
    return;
  }
  const std::size_t n = batch.size();
  auto room = [&]() ASYNCFLOW_REQUIRES(s.mu) {
    return s.queued == 0 || s.queued + n <= s.max_queued;
  };
  if (!room()) {
    // Lossless by default: the dispatcher waits for the subscribers, but not past stop().
    s.room_cv.wait_until(s.mu, s.deadline_value(),
                         [&]() ASYNCFLOW_REQUIRES(s.mu) { return room() || s.refused; });
    if (s.refused) return;
  }
  ++s.completed_hand_overs;  // the outcome below is final, and counted under mu
  if (!room()) {
    s.handed += n;
    s.finished += n;
    // Under mu: once refuse_hand_overs() has seen this hand-over complete, its count is in.
    s.losses->undelivered(n, "stop_timeout ran out while the subscribers were behind");
    batch.clear();
    return;
  }
  s.queue.push_back(std::move(batch));
  batch = std::vector<Event>();
  if (!s.spare.empty()) {
    batch = std::move(s.spare.back());
    s.spare.pop_back();
  }
  s.queued += n;
  s.handed += n;
  lock.unlock();
  s.work_cv.notify_one();
}

bool SubscriberStage::flush(Clock::time_point deadline) {
  State& s = *state_;
  MutexLock lock(s.mu);
  const std::uint64_t target = s.handed;
  return s.done_cv.wait_until(s.mu, deadline,
                              [&]() ASYNCFLOW_REQUIRES(s.mu) { return s.finished >= target; });
}

void SubscriberStage::set_deadline(Clock::time_point deadline) noexcept {
  State& s = *state_;
  {
    MutexLock lock(s.mu);
    if (deadline < s.deadline_value()) {
      s.deadline_ticks.store(deadline.time_since_epoch().count(), std::memory_order_release);
    }
    s.has_deadline.store(true, std::memory_order_release);
  }
  s.room_cv.notify_all();
}

void SubscriberStage::stop(Clock::time_point deadline) noexcept {
  State& s = *state_;
  set_deadline(deadline);
  MutexLock lock(s.mu);
  if (s.stopping && !s.thread.joinable()) return;
  s.stopping = true;
  s.work_cv.notify_all();
  if (s.thread.joinable()) {
    if (s.thread.get_id() == std::this_thread::get_id()) {
      // Only on the delivery thread itself (the manager refuses stop() there): it cannot join
      // itself, and ends on its own once its callback returns.
      s.abandoned = true;
      s.thread.detach();
      return;
    }
    s.done_cv.wait_until(s.mu, deadline, [&]() ASYNCFLOW_REQUIRES(s.mu) { return s.thread_done; });
    if (s.thread_done) {
      std::thread done = std::move(s.thread);
      lock.unlock();
      done.join();
      lock.lock();
    } else {
      // A callback is still running: it cannot be interrupted. Its thread finishes the call,
      // discards what is queued and ends; what it never delivers is counted now.
      s.abandoned = true;
      const std::uint64_t begun = s.started.fetch_or(State::kAbandoned, std::memory_order_acq_rel);
      const std::size_t left = s.queued - static_cast<std::size_t>(begun);
      s.thread.detach();
      lock.unlock();
      s.losses->undelivered(left, "a subscriber was still running when stop_timeout ran out");
      s.losses->note_error(
          "a subscriber was still running when stop_timeout ran out; its thread is left to "
          "finish that call");
      lock.lock();
    }
  }
  lock.unlock();
  s.registry->clear();  // releases the callbacks (a detached thread keeps its own snapshot)
}

std::uint64_t SubscriberStage::refuse_hand_overs() noexcept {
  State& s = *state_;
  std::uint64_t completed = 0;
  {
    MutexLock lock(s.mu);
    s.refused = true;
    completed = s.completed_hand_overs;
  }
  s.room_cv.notify_all();
  return completed;
}

bool SubscriberStage::has_subscribers() const noexcept {
  return state_->registry->count.load(std::memory_order_acquire) != 0;
}

bool SubscriberStage::on_delivery_thread() const noexcept {
  return state_->registry->delivery_thread.load() == std::this_thread::get_id();
}

}  // namespace detail
}  // namespace asyncflow
