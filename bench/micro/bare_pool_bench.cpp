// The floor for BM_IndependentThreadPool: the same n trivial closures pushed one by one through
// the simplest correct pool (one mutex + condition variable queue of std::function, 2 workers,
// a pending counter + condition variable to wait for all). No engine, no dependencies, no
// handles: whatever the engine costs on top of this is orchestration.
#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "bench_support.hpp"

namespace asyncflow::bench {
namespace {

/// A plain FIFO thread pool. push() and wait_idle() may be called from any thread; the
/// destructor runs what is queued, then joins.
class BarePool {
 public:
  explicit BarePool(std::size_t threads) {
    workers_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
  }
  ~BarePool() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  BarePool(const BarePool&) = delete;
  BarePool& operator=(const BarePool&) = delete;

  void push(std::function<void()> fn) {
    pending_.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }

  /// Blocks until every pushed closure has run.
  void wait_idle() {
    std::unique_lock lock(done_mu_);
    done_cv_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
  }

 private:
  void worker_loop() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
        if (queue_.empty()) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard lock(done_mu_);  // pairs with wait_idle's predicate check
        done_cv_.notify_all();
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::atomic<std::size_t> pending_{0};
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  std::vector<std::thread> workers_;
};

void BM_BareThreadPool(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  BarePool pool(2);  // = the thread pool backend's default on this 2-core machine
  // Each closure stores its result, as a task stores its value in its node.
  std::vector<int> results(n);
  std::int64_t expected = 0;
  for (std::size_t i = 0; i < n; ++i) expected += static_cast<std::int64_t>(i) + 1;

  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) {
      pool.push([slot = &results[i], x = static_cast<int>(i)] { *slot = x + 1; });
    }
    pool.wait_idle();
    std::int64_t sum = 0;
    for (int r : results) sum += r;
    if (sum != expected) {
      state.SkipWithError("wrong closure results");
      break;
    }
  }
  set_throughput(state, n);
}

BENCHMARK(BM_BareThreadPool)->Apply(throughput_sizes);

}  // namespace
}  // namespace asyncflow::bench
