// Thread pool: one shared FIFO (mutex + condvar) and a per-worker continuation slot.
//
// Why this shape (issue #2): a lock-free work-stealing deque is only worth landing with a
// benchmark that shows the gain (STYLE G12). The costs that dominate fine-grained work are a
// futex wake-up per task and a queue round trip; the continuation slot removes both for the
// common "finish a task, its successor becomes ready" case, and a briefly spinning idle
// worker removes the wake-up when a producer submits tasks one at a time.
#include "asyncflow/backend/thread_pool_backend.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "asyncflow/common/thread_annotations.hpp"
#include "common/spin_wait.hpp"

namespace asyncflow {

namespace {
// The pool whose worker is running on this thread, and that worker's continuation slot.
struct WorkerLocal {
  const void* pool = nullptr;
  BackendTask* continuation = nullptr;
};
thread_local WorkerLocal tl_worker;
}  // namespace

class ThreadPoolBackend::Impl {
 public:
  explicit Impl(ThreadPoolOptions options)
      : name_(std::move(options.name)), measure_usage_(options.measure_usage) {
    std::size_t n = options.threads;
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
    workers_.reserve(n);
    try {
      for (std::size_t i = 0; i < n; ++i) workers_.emplace_back([this] { worker_loop(); });
    } catch (...) {
      stop_and_join();
      throw;
    }
  }

  ~Impl() { stop_and_join(); }

  void submit(std::span<BackendTask* const> batch) {
    if (batch.empty()) return;
    std::size_t first = 0;
    // A worker finishing a task keeps the first successor for itself (see file comment).
    if (tl_worker.pool == this && tl_worker.continuation == nullptr) {
      tl_worker.continuation = batch[0];
      batch[0]->report_queued();
      first = 1;
    }
    if (first == batch.size()) return;
    // Report before publishing: once a worker can see a task it may finish and free it.
    for (std::size_t i = first; i < batch.size(); ++i) batch[i]->report_queued();
    {
      MutexLock lock(mu_);
      for (std::size_t i = first; i < batch.size(); ++i) queue_.push_back(batch[i]);
      queued_.store(queue_.size(), std::memory_order_relaxed);
    }
    // Spinning workers find new work without a futex wake-up; wake sleepers only for the rest.
    const auto pushed = static_cast<int>(batch.size() - first);
    if (sleeping_.load(std::memory_order_seq_cst) == 0 ||
        pushed <= spinning_.load(std::memory_order_seq_cst)) {
      return;
    }
    if (pushed == 1) {
      cv_.notify_one();
    } else {
      cv_.notify_all();
    }
  }

  void worker_loop() {
    tl_worker.pool = this;
    for (;;) {
      BackendTask* task = tl_worker.continuation;
      if (task != nullptr) {
        tl_worker.continuation = nullptr;
      } else {
        spin_for_work();
        MutexLock lock(mu_);
        spinning_.fetch_sub(1, std::memory_order_seq_cst);  // under mu_: see spinning_
        if (queue_.empty()) {
          sleeping_.fetch_add(1, std::memory_order_seq_cst);
          cv_.wait(mu_, [this]() ASYNCFLOW_REQUIRES(mu_) { return !queue_.empty() || stopping_; });
          sleeping_.fetch_sub(1, std::memory_order_seq_cst);
        }
        if (queue_.empty()) break;  // stopping_ and nothing left to run
        task = queue_.front();
        queue_.pop_front();
        queued_.store(queue_.size(), std::memory_order_relaxed);
        // A submitter that counted this worker as a spinner did not wake anyone for the
        // items behind this one: pass the wake-up on while a backlog remains.
        if (!queue_.empty() && sleeping_.load(std::memory_order_seq_cst) > 0) {
          lock.unlock();
          cv_.notify_one();
        }
      }
      task->run();  // reports its own outcome; may fill tl_worker.continuation
    }
    tl_worker.pool = nullptr;
  }

  void stop_and_join() {
    {
      MutexLock lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) {
      if (t.joinable()) t.join();
    }
    workers_.clear();
  }

  const std::string name_;
  const bool measure_usage_;
  std::vector<std::thread> workers_;

 private:
  Mutex mu_;
  CondVar cv_;
  std::deque<BackendTask*> queue_ ASYNCFLOW_GUARDED_BY(mu_);
  bool stopping_ ASYNCFLOW_GUARDED_BY(mu_) = false;
  // Queue length, readable without the lock by spinning workers.
  std::atomic<std::size_t> queued_{0};
  // Workers looking for work without sleeping, and workers asleep in cv_.wait. A worker moves
  // from spinning to sleeping under mu_, after a last look at the queue; submitters push under
  // mu_ and read both counters after unlocking. So a submitter that sees no spinner and a
  // sleeper wakes it, and one that sees a spinner knows it will look at the queue again.
  std::atomic<int> spinning_{0};
  std::atomic<int> sleeping_{0};

  // Before sleeping, a worker polls the queue for a short while: a producer creating tasks
  // one by one (~0.5 us each) would otherwise pay a futex wake-up per task (issue #2 bench:
  // 0.3 futex calls per task, 0.05x the bare pool). Yielding keeps the core available to the
  // producer on small machines.
  void spin_for_work() {
    spinning_.fetch_add(1, std::memory_order_seq_cst);
    detail::spin_until([this] { return queued_.load(std::memory_order_relaxed) != 0; },
                       kPauseRounds, kYieldRounds);
  }
  static constexpr int kPauseRounds = 64;
  static constexpr int kYieldRounds = 100;
};

std::shared_ptr<ThreadPoolBackend> ThreadPoolBackend::create(ThreadPoolOptions options) {
  return std::make_shared<ThreadPoolBackend>(std::move(options));
}

ThreadPoolBackend::ThreadPoolBackend(ThreadPoolOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

ThreadPoolBackend::~ThreadPoolBackend() = default;

const std::string& ThreadPoolBackend::name() const noexcept {
  return impl_->name_;
}

void ThreadPoolBackend::submit(std::span<BackendTask* const> batch) {
  impl_->submit(batch);
}

// The task itself carries the stop flag (set by the engine before it calls us); a queued task
// sees it when a worker calls run(), a running one through this_task::stop_requested().
void ThreadPoolBackend::cancel(BackendTask&) noexcept {}

bool ThreadPoolBackend::measures_calls() const noexcept {
  return impl_->measure_usage_;
}

std::size_t ThreadPoolBackend::thread_count() const noexcept {
  return impl_->workers_.size();
}

bool ThreadPoolBackend::on_worker_thread() const noexcept {
  return tl_worker.pool == impl_.get();
}

}  // namespace asyncflow
