// EventBus: a bounded multi-producer ring (Vyukov-style, one sequence number per slot) drained
// by one dispatcher thread in batches.
//
// Thread safety. Producers (any thread) touch only enqueue_pos_, the slots and the wake-up
// flags; the dispatcher alone reads slots and owns dequeue_pos_ and batch_. Invariants:
//  1. A slot at ring index i is free for position p (p & mask == i) when its seq == p, and
//     holds the event of position p when its seq == p + 1. A producer claims p with a CAS on
//     enqueue_pos_, moves the event in and publishes seq = p + 1; the dispatcher moves it out
//     and frees the slot for the next lap with seq = p + capacity. Positions are 63-bit and
//     never wrap in practice.
//  2. Bit 63 of enqueue_pos_ (kClosed) is set once, by stop(). A claim is a CAS that expects
//     the bit clear, so after the fetch_or no position can be claimed, and every position
//     below the closed value is published by its producer without waiting. The dispatcher
//     therefore knows exactly which events it still owes: it hands them to the handler until
//     the drain deadline, then discards and counts the rest, and only then exits.
//  3. Wake-ups. The dispatcher stores sleeping_ (kIdle or kLingering, seq_cst), then reloads
//     the slot it waits for, the stop flag, the deferred flag and waiters_. Sleeping and
//     waking go through sleep_mu_/sleep_cv_, the waker clearing sleeping_ first, so a wake-up
//     between the dispatcher's check and its wait is not lost.
//     A producer publishing a slot does NOT pair with that: it stores the seq (release) and
//     then loads sleeping_ without a fence between them (a seq_cst store is a full fence on
//     x86 and cost ~40% of try_push). In a race of a few nanoseconds it can therefore read
//     kAwake from a dispatcher that is going to sleep; the dispatcher never sleeps without a
//     deadline for that reason (a linger ends by itself, an idle wait rechecks after
//     idle_wait_, at most kIdleRecheckMax), so such an event waits at most that long.
//     Everything that must not wait pairs with seq_cst (no standalone fences: GCC's -Wtsan
//     rejects them under TSan): stop() (stopping_), emit_deferred() (has_deferred_), and
//     flush() and kBlock producers waiting for room (waiters_, then sleeping_). Likewise a waiting
//     producer or flush() increments waiters_ and then re-reads freed_pos_/done_pos_, while the
//     dispatcher stores those and then loads waiters_; it then notifies under wait_mu_, which the
//     waiter holds from its check until it sleeps.
//  4. Deferred events (emit_deferred() on a full ring) wait in deferred_, under deferred_mu_.
//     A producer checks kClosed under that mutex, and the dispatcher's last look at deferred_
//     before it exits also takes it, so an event deferred before the close is never left
//     behind. has_deferred_ wakes the dispatcher like a published slot (invariant 3).
//     Order: deferred_boundary_ is the claim count when the list was last empty; the
//     dispatcher hands over the ring below it, then the list, then the rest of the ring. While
//     the list is not empty a deferring thread appends to it, so each thread's events keep
//     their order.
//  5. Lingering (the batching that keeps the dispatcher off the producers' cache lines):
//     after a batch smaller than max_batch_ the dispatcher sleeps up to linger_ns_ unless a
//     whole batch is ready. It wakes early when position wake_at_ - 1 (a full batch past
//     dequeue_pos_) is published, on a deferred event, on stop(), and when a thread waits in
//     flush() or for room; so lingering delays events by at most linger_ns_ and never holds
//     up a flush, a stop or a full ring.
//  6. Abandoning (stop() under HandlerAtStop::kAbandon). handler_state_ is kInHandler while
//     the dispatcher is in a handler call; past the deadline stop() may CAS it to kAbandoned,
//     and the dispatcher leaves the call with a CAS back to kOutside. Exactly one of the two
//     wins: if stop() does, the dispatcher touches no event after the call (it ends at once),
//     and stop() counts every event it never took — the ring from freed_pos_ (equal to
//     dequeue_pos_ while a handler runs) up to the closed claim count, and the overflow list.
//     The thread co-owns its Impl through a shared_ptr, so it may outlive the EventBus.
#include "asyncflow/telemetry/event_bus.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncflow/common/error.hpp"
#include "common/cache_line.hpp"
#include "common/spin_wait.hpp"

#include <pthread.h>
#include "asyncflow/common/thread_annotations.hpp"

namespace asyncflow {

namespace {

// A slot is claimed before its event is moved in; a move that could throw would leave a
// claimed position that is never published and stall the dispatcher forever.
static_assert(std::is_nothrow_move_constructible_v<Event>);

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kClosed = std::uint64_t{1} << 63;
constexpr std::uint64_t kNoDiscard = std::numeric_limits<std::uint64_t>::max();
constexpr std::int64_t kNoDeadline = std::numeric_limits<std::int64_t>::max();
// Keeps bit_ceil defined and positions far below kClosed; no machine has the memory anyway.
constexpr std::uint64_t kMaxCapacity = std::uint64_t{1} << 40;

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// now + timeout on the steady clock in ns, saturating (a timeout of nanoseconds::max() means
// "no deadline" rather than an overflow).
std::int64_t deadline_after(std::chrono::nanoseconds timeout) noexcept {
  const std::int64_t now = now_ns();
  const std::int64_t t = std::max<std::int64_t>(timeout.count(), 0);
  return t >= kNoDeadline - now ? kNoDeadline : now + t;
}

Clock::time_point to_time_point(std::int64_t ns) noexcept {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

}  // namespace

struct EventBus::Impl {
  Impl(BusOptions options, BatchHandler h);

  bool emit(Event&& event);
  bool emit_deferred(Event&& event);
  bool flush(std::chrono::nanoseconds timeout);
  bool stop(std::chrono::nanoseconds timeout, HandlerAtStop at_timeout);
  bool on_dispatcher_thread() const noexcept;

  enum class Push { kPushed, kFull, kClosed };

  struct Slot {
    std::atomic<std::uint64_t> seq{0};
    std::optional<Event> event;
  };

  Push try_push(Event& event) noexcept;
  /// The slots ahead of a producer were last written by the dispatcher, a lap ago: fetching
  /// one a few events early keeps its cache misses out of the (fenced) publication. Measured:
  /// try_push's share of the producer's time fell from 12% to 7% (perf, NoCheckpoint/1M).
  static void prefetch_for_write(const Slot& slot) noexcept {
    const char* p = reinterpret_cast<const char*>(&slot);
    for (std::size_t off = 0; off < sizeof(Slot); off += detail::kCacheLine) {
      __builtin_prefetch(p + off, /*rw=*/1, /*locality=*/3);
    }
  }
  static constexpr std::uint64_t kPrefetchAhead = 8;
  void wait_for_space(std::uint64_t seen_freed);
  void count_dropped(std::uint64_t n) noexcept { dropped_.fetch_add(n, std::memory_order_relaxed); }
  void wake_dispatcher() noexcept;
  /// After a publication of position `pos`: wakes a dispatcher that waits for it.
  void wake_for(std::uint64_t pos) noexcept;
  void notify_waiters() noexcept;
  void begin_stop(std::int64_t deadline) noexcept;

  // Dispatcher thread only.
  void run() noexcept;
  bool next_ready() const noexcept;
  void take_batch() noexcept;
  void take_ring(std::uint64_t until) noexcept;
  void take_deferred() noexcept;
  bool deferred_empty_after_close() noexcept;
  /// Hands batch_ over; false when stop() abandoned the call (invariant 6).
  bool deliver() noexcept;
  /// The dispatcher's whole life: run(), then the exit signal and the release of the handler.
  void dispatch() noexcept;
  /// stop() under kAbandon: waits for the dispatcher to end, or past the deadline abandons it
  /// in a handler call. Returns true when it ended (and can be joined).
  bool wait_for_exit_or_abandon(std::int64_t deadline) noexcept;
  void count_abandoned() noexcept;
  void discard_rest(std::uint64_t end) noexcept;
  void sleep_until_work() noexcept;
  void linger() noexcept;
  /// Announces `state` in sleeping_, rechecks `done` (invariant 3) and, unless it holds,
  /// waits up to `timeout` for a wake_dispatcher(). Returns whether one came (or `done` held).
  template <class Pred>
  bool sleep_as(std::uint32_t state, std::chrono::nanoseconds timeout, Pred done) noexcept;
  bool someone_waits() const noexcept;

  // Immutable after construction.
  const std::uint64_t capacity_;
  const std::uint64_t mask_;
  const std::size_t max_batch_;     // min(options.max_batch, capacity_): batch_ never reallocates
  const std::size_t max_deferred_;  // max(4 x capacity, 2^16): see emit_deferred()
  const OverflowPolicy overflow_;
  const std::int64_t linger_ns_;  // options.linger; 0 = hand over events as they arrive
  BatchHandler handler_;  // released by the dispatcher as it ends (it may own the handler's state)
  const std::unique_ptr<Slot[]> slots_;

  // Stop state: read by the dispatcher once per batch, written once by stop(), after the
  // drain deadline and the kClosed bit.
  alignas(detail::kCacheLine) std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> deadline_ns_{kNoDeadline};

  // Claimed positions | kClosed. The only line every emit() writes.
  alignas(detail::kCacheLine) std::atomic<std::uint64_t> enqueue_pos_{0};

  // kIdle / kLingering while the dispatcher sleeps (or is about to), with the position whose
  // publication ends a linger; read by every emit(), so they get a line of their own that
  // stays shared in the producers' caches while the dispatcher is awake.
  static constexpr std::uint32_t kAwake = 0;
  static constexpr std::uint32_t kIdle = 1;       // woken by any event
  static constexpr std::uint32_t kLingering = 2;  // woken by position wake_at_ - 1, or a timeout
  alignas(detail::kCacheLine) std::atomic<std::uint32_t> sleeping_{kAwake};
  std::atomic<std::uint64_t> wake_at_{0};
  Mutex sleep_mu_;
  CondVar sleep_cv_;

  // Progress, published by the dispatcher once per batch for kBlock producers and flush().
  alignas(detail::kCacheLine) std::atomic<std::uint64_t> freed_pos_{
      0};                                                // slots below are free again
  std::atomic<std::uint64_t> done_pos_{0};               // events below were handled or discarded
  std::atomic<std::uint64_t> discard_from_{kNoDiscard};  // first position discarded at stop
  std::atomic<std::uint64_t> handled_{0};
  std::atomic<std::uint64_t> handler_errors_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> discarded_{0};

  // Events emitted where waiting could wait on the dispatcher itself (invariant 4).
  alignas(detail::kCacheLine) std::atomic<bool> has_deferred_{false};
  Mutex deferred_mu_;
  std::deque<Event> deferred_ ASYNCFLOW_GUARDED_BY(deferred_mu_);
  // Ring claims before deferred_'s first event.
  std::uint64_t deferred_boundary_ ASYNCFLOW_GUARDED_BY(deferred_mu_) = 0;
  std::atomic<std::uint64_t> deferred_in_{0};    // ever deferred (written under deferred_mu_)
  std::atomic<std::uint64_t> deferred_done_{0};  // of those, handled or discarded
  std::size_t batch_deferred_ = 0;               // dispatcher: deferred events in batch_

  // Threads blocked in wait_for_space() or flush(). They sleep on wait_cv_ under wait_mu_.
  alignas(detail::kCacheLine) std::atomic<std::uint32_t> waiters_{0};
  Mutex wait_mu_;
  CondVar wait_cv_;

  // Dispatcher-owned.
  alignas(detail::kCacheLine) std::uint64_t dequeue_pos_ = 0;
  // How long an idle wait lasts before it looks for a publication it was not woken for.
  static constexpr std::chrono::milliseconds kIdleRecheckMin{1};
  static constexpr std::chrono::milliseconds kIdleRecheckMax{50};
  std::chrono::milliseconds idle_wait_ = kIdleRecheckMin;
  std::vector<Event> batch_;

  // The handler call in progress (invariant 6).
  static constexpr std::uint32_t kOutside = 0;
  static constexpr std::uint32_t kInHandler = 1;
  static constexpr std::uint32_t kAbandoned = 2;
  std::atomic<std::uint32_t> handler_state_{kOutside};
  std::atomic<bool> abandoned_{false};
  Mutex exit_mu_;
  CondVar exit_cv_;
  bool exited_ ASYNCFLOW_GUARDED_BY(exit_mu_) = false;

  // Serializes stop() callers (never taken on the dispatcher thread, which stop() joins).
  Mutex stop_mu_;
  bool stopped_ ASYNCFLOW_GUARDED_BY(stop_mu_) = false;
  bool stop_result_ ASYNCFLOW_GUARDED_BY(stop_mu_) = false;
  std::thread thread_;  // started last; joined under stop_mu_

  // Before sleeping, the dispatcher polls for a short while: a producer emitting one event at
  // a time would otherwise pay a futex wake-up for most events. Yields keep the core free for
  // that producer on small machines (the same trade-off as the thread pool's idle workers).
  static constexpr int kDispatchPauseRounds = 64;
  static constexpr int kDispatchYieldRounds = 32;
  // A kBlock producer facing a full ring polls briefly before sleeping: a dispatcher that keeps
  // up frees a whole batch of slots within microseconds.
  static constexpr int kSpacePauseRounds = 64;
  static constexpr int kSpaceYieldRounds = 16;
};

namespace {
// The bus whose dispatcher runs on this thread (emit() uses it to avoid waiting on itself).
thread_local const void* tl_dispatcher = nullptr;
}  // namespace

EventBus::Impl::Impl(BusOptions options, BatchHandler h)
    : capacity_(std::bit_ceil(std::clamp<std::uint64_t>(options.capacity, 2, kMaxCapacity))),
      mask_(capacity_ - 1),
      max_batch_(static_cast<std::size_t>(std::min<std::uint64_t>(options.max_batch, capacity_))),
      max_deferred_(static_cast<std::size_t>(std::max<std::uint64_t>(4 * capacity_, 1 << 16))),
      overflow_(options.overflow),
      linger_ns_(static_cast<std::int64_t>(options.linger * 1e9)),
      handler_(std::move(h)),
      slots_(std::make_unique<Slot[]>(capacity_)) {
  for (std::uint64_t i = 0; i < capacity_; ++i) slots_[i].seq.store(i, std::memory_order_relaxed);
  batch_.reserve(max_batch_);
}

bool EventBus::Impl::on_dispatcher_thread() const noexcept {
  return tl_dispatcher == this;
}

EventBus::Impl::Push EventBus::Impl::try_push(Event& event) noexcept {
  std::uint64_t pos = enqueue_pos_.load(std::memory_order_relaxed);
  for (;;) {
    if ((pos & kClosed) != 0) return Push::kClosed;
    Slot& slot = slots_[pos & mask_];
    const std::uint64_t seq = slot.seq.load(std::memory_order_acquire);
    const auto diff = static_cast<std::int64_t>(seq - pos);
    if (diff == 0) {
      if (enqueue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        prefetch_for_write(slots_[(pos + kPrefetchAhead) & mask_]);
        slot.event.emplace(std::move(event));
        // Release, not seq_cst: the wake-up check below may miss a dispatcher that is just
        // going to sleep, which bounds its sleep for that (invariant 3).
        slot.seq.store(pos + 1, std::memory_order_release);
        wake_for(pos);
        return Push::kPushed;
      }
      // The failed CAS reloaded pos.
    } else if (diff < 0) {
      return Push::kFull;  // the slot still holds the event of the previous lap
    } else {
      pos = enqueue_pos_.load(std::memory_order_relaxed);  // another producer got there first
    }
  }
}

bool EventBus::Impl::emit_deferred(Event&& event) {
  // While events wait in the overflow list, later ones join them (a thread's events stay in
  // its order: the ring would hand them over before the list).
  if (!has_deferred_.load(std::memory_order_seq_cst)) {
    const Push r = try_push(event);
    if (r == Push::kPushed) return true;
    if (r == Push::kClosed) {
      count_dropped(1);
      return false;
    }
  }
  {
    MutexLock lock(deferred_mu_);
    const std::uint64_t claimed = enqueue_pos_.load(std::memory_order_seq_cst);
    if ((claimed & kClosed) != 0 || deferred_.size() >= max_deferred_) {
      count_dropped(1);
      return false;
    }
    // The ring's events claimed before this one (this thread's among them) go first.
    if (deferred_.empty()) deferred_boundary_ = claimed;
    deferred_.push_back(std::move(event));
    deferred_in_.fetch_add(1, std::memory_order_seq_cst);
    has_deferred_.store(true, std::memory_order_seq_cst);
  }
  // seq_cst store of has_deferred_, then seq_cst load of sleeping_: invariant 3.
  if (sleeping_.load(std::memory_order_seq_cst) != kAwake) wake_dispatcher();
  return true;
}

bool EventBus::Impl::emit(Event&& event) {
  for (;;) {
    Push r = try_push(event);
    if (r == Push::kPushed) return true;
    if (r == Push::kClosed || overflow_ == OverflowPolicy::kDropNewest) {
      count_dropped(1);
      return false;
    }
    // Re-entrant emit under kBlock: waiting on the dispatcher from the dispatcher thread
    // would wait on itself, so the event takes the overflow list.
    if (on_dispatcher_thread()) return emit_deferred(std::move(event));
    // Read the progress mark before the retry so that no slot freed after it is missed.
    const std::uint64_t seen = freed_pos_.load(std::memory_order_seq_cst);
    r = try_push(event);
    if (r == Push::kPushed) return true;
    if (r == Push::kClosed) {
      count_dropped(1);
      return false;
    }
    wait_for_space(seen);
  }
}

void EventBus::Impl::wait_for_space(std::uint64_t seen_freed) {
  auto progressed = [&] {
    return freed_pos_.load(std::memory_order_seq_cst) != seen_freed ||
           stopping_.load(std::memory_order_seq_cst);
  };
  if (detail::spin_until(progressed, kSpacePauseRounds, kSpaceYieldRounds)) return;
  MutexLock lock(wait_mu_);
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  // seq_cst increment, then seq_cst load of sleeping_: a lingering dispatcher stops, and one
  // that missed the last publications wakes (invariants 3 and 5).
  if (sleeping_.load(std::memory_order_seq_cst) != kAwake) wake_dispatcher();
  wait_cv_.wait(wait_mu_, progressed);
  waiters_.fetch_sub(1, std::memory_order_relaxed);
}

void EventBus::Impl::wake_dispatcher() noexcept {
  if (sleeping_.exchange(kAwake, std::memory_order_seq_cst) == kAwake) return;
  { MutexLock lock(sleep_mu_); }  // the dispatcher between its check and its wait holds it
  sleep_cv_.notify_one();
}

void EventBus::Impl::wake_for(std::uint64_t pos) noexcept {
  const std::uint32_t s = sleeping_.load(std::memory_order_acquire);
  if (s == kAwake) return;
  // wake_at_ was stored before sleeping_: this load sees this linger's or a later one.
  if (s == kIdle || pos + 1 >= wake_at_.load(std::memory_order_relaxed)) wake_dispatcher();
}

void EventBus::Impl::notify_waiters() noexcept {
  if (waiters_.load(std::memory_order_seq_cst) == 0) return;
  { MutexLock lock(wait_mu_); }  // a waiter between its check and its wait holds it
  wait_cv_.notify_all();
}

bool EventBus::Impl::flush(std::chrono::nanoseconds timeout) {
  const std::uint64_t target = enqueue_pos_.load(std::memory_order_seq_cst) & ~kClosed;
  const std::uint64_t deferred_target = deferred_in_.load(std::memory_order_seq_cst);
  auto reached = [&] {
    return done_pos_.load(std::memory_order_seq_cst) >= target &&
           deferred_done_.load(std::memory_order_seq_cst) >= deferred_target;
  };
  // On the dispatcher thread the events before `target` include the batch being handled:
  // waiting would never end.
  if (!reached() && !on_dispatcher_thread()) {
    MutexLock lock(wait_mu_);
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    // seq_cst increment, then seq_cst load of sleeping_: a lingering dispatcher stops, and one
    // that missed the last publications wakes (invariants 3 and 5).
    if (sleeping_.load(std::memory_order_seq_cst) != kAwake) wake_dispatcher();
    wait_cv_.wait_until(wait_mu_, to_time_point(deadline_after(timeout)), reached);
    waiters_.fetch_sub(1, std::memory_order_relaxed);
  }
  // done_pos_ also moves past events discarded at stop; those were not handled.
  return reached() && discard_from_.load(std::memory_order_acquire) >= target;
}

void EventBus::Impl::begin_stop(std::int64_t deadline) noexcept {
  // The first caller's deadline wins; it is visible before stopping_ (both seq_cst).
  std::int64_t none = kNoDeadline;
  deadline_ns_.compare_exchange_strong(none, deadline, std::memory_order_seq_cst);
  // Close before stopping_: a dispatcher that sees stopping_ must also see the final claim
  // count, or it could exit while a later claim is still on its way.
  enqueue_pos_.fetch_or(kClosed, std::memory_order_seq_cst);
  stopping_.store(true, std::memory_order_seq_cst);
  wake_dispatcher();
  { MutexLock lock(wait_mu_); }  // kBlock producers and flushers re-check stopping_
  wait_cv_.notify_all();
}

bool EventBus::Impl::stop(std::chrono::nanoseconds timeout, HandlerAtStop at_timeout) {
  const std::int64_t deadline = deadline_after(timeout);
  if (on_dispatcher_thread()) {
    // Misuse (documented): the dispatcher cannot join itself. Close intake and let the
    // owner's stop() or the destructor drain and join.
    begin_stop(deadline);
    return false;
  }
  MutexLock lock(stop_mu_);
  if (!stopped_) {
    begin_stop(deadline);
    if (at_timeout == HandlerAtStop::kWait || wait_for_exit_or_abandon(deadline)) {
      thread_.join();
    } else {
      thread_.detach();  // it co-owns its Impl, and ends once the handler call returns
    }
    stopped_ = true;
    stop_result_ = discard_from_.load(std::memory_order_acquire) == kNoDiscard &&
                   !abandoned_.load(std::memory_order_acquire);
  }
  return stop_result_;
}

bool EventBus::Impl::wait_for_exit_or_abandon(std::int64_t deadline) noexcept {
  MutexLock lock(exit_mu_);
  auto exited = [this]() ASYNCFLOW_REQUIRES(exit_mu_) { return exited_; };
  if (deadline != kNoDeadline) exit_cv_.wait_until(exit_mu_, to_time_point(deadline), exited);
  while (!exited_) {
    // Past the deadline the dispatcher discards what is left and ends, unless it is in (or
    // about to enter) a handler call: that one is left to finish on its own.
    std::uint32_t expected = kInHandler;
    if (handler_state_.compare_exchange_strong(expected, kAbandoned, std::memory_order_seq_cst)) {
      lock.unlock();
      count_abandoned();
      return false;
    }
    exit_cv_.wait_for(exit_mu_, std::chrono::milliseconds(1), exited);
  }
  return true;
}

void EventBus::Impl::count_abandoned() noexcept {
  // The dispatcher stays out of the ring for good (invariant 6) and the close fixed the claim
  // count, so what it never took is known exactly.
  const std::uint64_t end = enqueue_pos_.load(std::memory_order_seq_cst) & ~kClosed;
  const std::uint64_t taken = freed_pos_.load(std::memory_order_seq_cst);
  std::uint64_t deferred = 0;
  {
    MutexLock lock(deferred_mu_);
    deferred = deferred_.size();
  }
  const std::uint64_t n = end - taken + deferred;
  // The batch in the handler is not handled either (the handler accounts for its events).
  discard_from_.store(done_pos_.load(std::memory_order_seq_cst), std::memory_order_release);
  count_dropped(n);
  discarded_.fetch_add(n, std::memory_order_relaxed);
  abandoned_.store(true, std::memory_order_release);
  deferred_done_.store(deferred_in_.load(std::memory_order_seq_cst), std::memory_order_seq_cst);
  done_pos_.store(end, std::memory_order_seq_cst);  // flush() waits no more (and says false)
  notify_waiters();
}

bool EventBus::Impl::next_ready() const noexcept {
  return slots_[dequeue_pos_ & mask_].seq.load(std::memory_order_seq_cst) == dequeue_pos_ + 1;
}

void EventBus::Impl::take_batch() noexcept {
  // The handler may have swapped in a vector of its own: room for a batch without reallocating.
  if (batch_.capacity() < max_batch_) batch_.reserve(max_batch_);
  batch_deferred_ = 0;
  // Overflow events come after the ring's events claimed before them (invariant 4), and
  // before the ring's later ones: a busy producer keeps the ring full, and the overflow list
  // belongs to threads the dispatcher may be waiting for.
  std::uint64_t boundary = std::numeric_limits<std::uint64_t>::max();
  if (has_deferred_.load(std::memory_order_seq_cst)) {
    MutexLock lock(deferred_mu_);
    if (!deferred_.empty()) boundary = deferred_boundary_;
  }
  const std::uint64_t first = dequeue_pos_;
  take_ring(boundary);
  if (dequeue_pos_ >= boundary) {
    take_deferred();
    take_ring(std::numeric_limits<std::uint64_t>::max());
  }
  if (dequeue_pos_ == first) return;  // no ring slot to free
  // Free the slots before the handler runs, so producers refill while it works.
  freed_pos_.store(dequeue_pos_, std::memory_order_seq_cst);
  notify_waiters();
}

void EventBus::Impl::take_ring(std::uint64_t until) noexcept {
  while (batch_.size() < max_batch_ && dequeue_pos_ < until) {
    Slot& slot = slots_[dequeue_pos_ & mask_];
    if (slot.seq.load(std::memory_order_acquire) != dequeue_pos_ + 1) break;
    batch_.push_back(std::move(*slot.event));  // no reallocation: reserved max_batch_
    slot.event.reset();
    slot.seq.store(dequeue_pos_ + capacity_, std::memory_order_release);
    ++dequeue_pos_;
  }
}

void EventBus::Impl::take_deferred() noexcept {
  MutexLock lock(deferred_mu_);
  while (batch_.size() < max_batch_ && !deferred_.empty()) {
    batch_.push_back(std::move(deferred_.front()));
    deferred_.pop_front();
    ++batch_deferred_;
  }
  if (deferred_.empty()) has_deferred_.store(false, std::memory_order_seq_cst);
}

bool EventBus::Impl::deferred_empty_after_close() noexcept {
  MutexLock lock(deferred_mu_);
  return deferred_.empty();
}

bool EventBus::Impl::deliver() noexcept {
  handler_state_.store(kInHandler, std::memory_order_seq_cst);
  try {
    handler_(batch_);
  } catch (...) {
    // G6: a broken subscriber must not take the bus down; the count is exported as a metric.
    handler_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  std::uint32_t expected = kInHandler;
  if (!handler_state_.compare_exchange_strong(expected, kOutside, std::memory_order_seq_cst)) {
    return false;  // stop() gave up on this call and counted the rest (invariant 6)
  }
  handled_.fetch_add(batch_.size(), std::memory_order_relaxed);
  batch_.clear();
  if (batch_deferred_ != 0) {
    deferred_done_.fetch_add(batch_deferred_, std::memory_order_seq_cst);
    batch_deferred_ = 0;
  }
  done_pos_.store(dequeue_pos_, std::memory_order_seq_cst);
  notify_waiters();
  return true;
}

void EventBus::Impl::discard_rest(std::uint64_t end) noexcept {
  discard_from_.store(dequeue_pos_, std::memory_order_release);
  const std::uint64_t n = end - dequeue_pos_;
  while (dequeue_pos_ != end) {
    // Claimed below `end` means published without waiting (invariant 2): spin until it is.
    detail::spin_until([this] { return next_ready(); }, 0, std::numeric_limits<int>::max());
    Slot& slot = slots_[dequeue_pos_ & mask_];
    slot.event.reset();
    slot.seq.store(dequeue_pos_ + capacity_, std::memory_order_release);
    ++dequeue_pos_;
  }
  std::uint64_t deferred = 0;
  {
    MutexLock lock(deferred_mu_);
    deferred = deferred_.size();
    deferred_.clear();
    has_deferred_.store(false, std::memory_order_seq_cst);
  }
  count_dropped(n + deferred);
  discarded_.fetch_add(n + deferred, std::memory_order_relaxed);
  deferred_done_.fetch_add(deferred, std::memory_order_seq_cst);
  freed_pos_.store(dequeue_pos_, std::memory_order_seq_cst);
  done_pos_.store(dequeue_pos_, std::memory_order_seq_cst);
  notify_waiters();
}

void EventBus::Impl::sleep_until_work() noexcept {
  auto work = [this] {
    return next_ready() || has_deferred_.load(std::memory_order_seq_cst) ||
           stopping_.load(std::memory_order_seq_cst);
  };
  if (detail::spin_until(work, kDispatchPauseRounds, kDispatchYieldRounds)) return;
  // Timed: the recheck for a publication that did not wake us (invariant 3).
  const bool woken = sleep_as(kIdle, idle_wait_, work);
  // An idle bus rechecks less and less often: a few wake-ups a second at most.
  idle_wait_ = woken ? kIdleRecheckMin : std::min(idle_wait_ * 2, kIdleRecheckMax);
}

template <class Pred>
bool EventBus::Impl::sleep_as(std::uint32_t state, std::chrono::nanoseconds timeout,
                              Pred done) noexcept {
  sleeping_.store(state, std::memory_order_seq_cst);
  if (done()) {
    sleeping_.store(kAwake, std::memory_order_relaxed);
    return true;
  }
  bool woken = false;
  {
    MutexLock lock(sleep_mu_);
    // Until a producer, a flusher or stop() clears sleeping_ (wake_dispatcher()).
    woken = sleep_cv_.wait_for(
        sleep_mu_, timeout, [this] { return sleeping_.load(std::memory_order_seq_cst) == kAwake; });
  }
  sleeping_.store(kAwake, std::memory_order_seq_cst);  // on a timeout nobody cleared it
  return woken;
}

bool EventBus::Impl::someone_waits() const noexcept {
  return waiters_.load(std::memory_order_seq_cst) != 0;
}

void EventBus::Impl::linger() noexcept {
  // A whole batch past what was taken ends the wait: the position of its last event.
  const std::uint64_t wake_at = dequeue_pos_ + max_batch_;
  auto done = [this, wake_at] {
    return slots_[(wake_at - 1) & mask_].seq.load(std::memory_order_seq_cst) == wake_at ||
           has_deferred_.load(std::memory_order_seq_cst) ||
           stopping_.load(std::memory_order_seq_cst) || someone_waits();
  };
  wake_at_.store(wake_at, std::memory_order_relaxed);  // before sleeping_: see wake_for()
  sleep_as(kLingering, std::chrono::nanoseconds(linger_ns_), done);
}

void EventBus::Impl::run() noexcept {
  // Named for top -H, perf and debuggers (at most 15 characters).
  pthread_setname_np(pthread_self(), "af-telemetry");
  tl_dispatcher = this;
  for (;;) {
    if (stopping_.load(std::memory_order_seq_cst)) {
      const std::uint64_t end = enqueue_pos_.load(std::memory_order_seq_cst) & ~kClosed;
      if (dequeue_pos_ == end && deferred_empty_after_close()) break;
      if (now_ns() >= deadline_ns_.load(std::memory_order_seq_cst)) {
        discard_rest(end);
        break;
      }
    }
    take_batch();
    if (!batch_.empty()) {
      const bool full = batch_.size() >= max_batch_;
      if (!deliver()) break;
      // A part batch: the producers are slower than the dispatcher. Chasing them event by
      // event would pull each slot's lines across cores as they are written (invariant 5).
      if (!full && linger_ns_ > 0) linger();
    } else if (stopping_.load(std::memory_order_seq_cst)) {
      std::this_thread::yield();  // a producer claimed a slot before the close and is filling it
    } else {
      sleep_until_work();
    }
  }
  tl_dispatcher = nullptr;
}

void EventBus::Impl::dispatch() noexcept {
  run();
  {
    MutexLock lock(exit_mu_);
    exited_ = true;
  }
  exit_cv_.notify_all();
  // The handler may own what it works on (HandlerAtStop::kAbandon): released here, on this
  // thread, once nothing can call it. Moved out first: its destruction may end the bus.
  BatchHandler released = std::move(handler_);
  handler_ = nullptr;
}

EventBus::EventBus(BusOptions options, BatchHandler handler) {
  if (options.capacity == 0) {
    throw Error("EventBus: capacity must be at least 1 event (BusOptions::capacity is 0)");
  }
  if (options.capacity > kMaxCapacity) {
    throw Error("EventBus: capacity " + std::to_string(options.capacity) +
                " is above the limit of 2^40 events");
  }
  if (!(options.linger >= 0 && options.linger <= 60)) {  // also NaN
    throw Error("EventBus: linger must be between 0 and 60 seconds (BusOptions::linger is " +
                std::to_string(options.linger) + ")");
  }
  if (options.max_batch == 0) {
    throw Error("EventBus: max_batch must be at least 1 event (BusOptions::max_batch is 0)");
  }
  if (options.overflow != OverflowPolicy::kBlock &&
      options.overflow != OverflowPolicy::kDropNewest) {
    throw Error("EventBus: unknown overflow policy " +
                std::to_string(static_cast<int>(options.overflow)));
  }
  if (!handler) throw Error("EventBus: the batch handler is empty");
  impl_ = std::make_shared<Impl>(options, std::move(handler));
  // Every member is ready: only now may the dispatcher see the Impl, which it co-owns.
  impl_->thread_ = std::thread([impl = impl_] { impl->dispatch(); });
}

EventBus::~EventBus() {
  stop(std::chrono::seconds(5));
}

bool EventBus::emit(Event&& event) {
  return impl_->emit(std::move(event));
}

bool EventBus::emit_deferred(Event&& event) {
  return impl_->emit_deferred(std::move(event));
}

bool EventBus::flush(std::chrono::nanoseconds timeout) {
  return impl_->flush(timeout);
}

bool EventBus::stop(std::chrono::nanoseconds timeout, HandlerAtStop at_timeout) {
  return impl_->stop(timeout, at_timeout);
}

bool EventBus::abandoned() const noexcept {
  return impl_->abandoned_.load(std::memory_order_acquire);
}

bool EventBus::running() const noexcept {
  return !impl_->stopping_.load(std::memory_order_acquire);
}

std::uint64_t EventBus::dropped() const noexcept {
  return impl_->dropped_.load(std::memory_order_relaxed);
}

std::uint64_t EventBus::discarded() const noexcept {
  return impl_->discarded_.load(std::memory_order_relaxed);
}

std::uint64_t EventBus::handled() const noexcept {
  return impl_->handled_.load(std::memory_order_relaxed);
}

std::uint64_t EventBus::deferred() const noexcept {
  return impl_->deferred_in_.load(std::memory_order_relaxed);
}

std::uint64_t EventBus::handler_errors() const noexcept {
  return impl_->handler_errors_.load(std::memory_order_relaxed);
}

bool EventBus::on_dispatcher_thread() const noexcept {
  return impl_->on_dispatcher_thread();
}

}  // namespace asyncflow
