// Thread pool: one shared FIFO (mutex + condvar) and a per-worker continuation slot.
//
// Why this shape (issue #2): a lock-free work-stealing deque is only worth landing with a
// benchmark that shows the gain (STYLE G12). The two costs that dominate fine-grained chains
// are a futex wake-up per task and a queue round trip; the continuation slot removes both for
// the common "finish a task, its successor becomes ready" case, and `idle_` lets submitters
// skip notify_one() when no worker sleeps.
#include "asyncflow/backend/thread_pool_backend.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

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
  explicit Impl(ThreadPoolOptions options) : name_(std::move(options.name)) {
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
      std::lock_guard lock(mu_);
      for (std::size_t i = first; i < batch.size(); ++i) queue_.push_back(batch[i]);
    }
    const std::size_t pushed = batch.size() - first;
    const int idle = idle_.load(std::memory_order_seq_cst);
    if (idle == 0) return;
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
        std::unique_lock lock(mu_);
        if (queue_.empty()) {
          idle_.fetch_add(1, std::memory_order_seq_cst);
          cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
          idle_.fetch_sub(1, std::memory_order_seq_cst);
        }
        if (queue_.empty()) break;  // stopping_ and nothing left to run
        task = queue_.front();
        queue_.pop_front();
      }
      task->run();  // reports its own outcome; may fill tl_worker.continuation
    }
    tl_worker.pool = nullptr;
  }

  void stop_and_join() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) {
      if (t.joinable()) t.join();
    }
    workers_.clear();
  }

  const std::string name_;
  std::vector<std::thread> workers_;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<BackendTask*> queue_;  // guarded by mu_
  bool stopping_ = false;           // guarded by mu_
  // Workers blocked in cv_.wait (or about to be). Read without the lock by submitters: a
  // worker increments it under mu_ before waiting, and submitters push under mu_ first, so a
  // submitter that reads 0 after its push knows every worker will see the new item.
  std::atomic<int> idle_{0};
};

std::shared_ptr<ThreadPoolBackend> ThreadPoolBackend::create(ThreadPoolOptions options) {
  return std::make_shared<ThreadPoolBackend>(std::move(options));
}

ThreadPoolBackend::ThreadPoolBackend(ThreadPoolOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

ThreadPoolBackend::~ThreadPoolBackend() = default;

const std::string& ThreadPoolBackend::name() const noexcept { return impl_->name_; }

void ThreadPoolBackend::submit(std::span<BackendTask* const> batch) { impl_->submit(batch); }

// The task itself carries the stop flag (set by the engine before it calls us); a queued task
// sees it when a worker calls run(), a running one through this_task::stop_requested().
void ThreadPoolBackend::cancel(BackendTask&) noexcept {}

std::size_t ThreadPoolBackend::thread_count() const noexcept { return impl_->workers_.size(); }

bool ThreadPoolBackend::on_worker_thread() const noexcept { return tl_worker.pool == impl_.get(); }

}  // namespace asyncflow
