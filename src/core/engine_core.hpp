// Private: the engine's state, shared by engine.cpp (lifecycle), scheduler.cpp (graph
// execution) and scope.cpp (workflow scopes).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "asyncflow/backend/backend.hpp"
#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/core/observer.hpp"
#include "asyncflow/detail/node.hpp"
#include "common/cache_line.hpp"

namespace asyncflow {
class TelemetryManager;
}  // namespace asyncflow

namespace asyncflow::detail {

class EngineCore {
 public:
  std::string uid;
  std::filesystem::path work_dir;  // {work_dir}/{uid}, made when first needed (make_work_dir)
  /// Makes work_dir (once; later calls return the first answer): "" when it exists, else why
  /// not. Thread-safe.
  const std::string& make_work_dir() noexcept;
  std::once_flag work_dir_made;
  std::string work_dir_error;  // set before work_dir_made, or by it
  mutable Mutex backends_mu;
  // Default first; emptied by shutdown.
  std::vector<std::shared_ptr<Backend>> backends ASYNCFLOW_GUARDED_BY(backends_mu);

  // Per-engine uid counters (reference flaw §8.13: a process-global counter reset by any
  // engine's shutdown produced duplicate uids).
  std::atomic<std::uint64_t> task_seq{0};
  std::atomic<std::uint64_t> block_seq{0};

  // Tasks created and not finished. shutdown() waits for it to reach zero. The decrement
  // that may reach zero happens under idle_mu, so once shutdown() sees zero while holding
  // idle_mu no thread will touch this engine again (see task_finished_accounting).
  alignas(kCacheLine) std::atomic<std::int64_t> live{0};
  Mutex idle_mu;
  CondVar idle_cv;
  std::atomic<bool> shutting_down{false};

  // Hot-path read is one relaxed load and a branch (STYLE G3).
  std::atomic<EngineObserver*> observer{nullptr};
  Mutex observers_mu;
  std::vector<std::shared_ptr<EngineObserver>> observers_kept ASYNCFLOW_GUARDED_BY(observers_mu);
  std::shared_ptr<EngineObserver> telemetry_observer ASYNCFLOW_GUARDED_BY(observers_mu);
  std::shared_ptr<EngineObserver> user_observer ASYNCFLOW_GUARDED_BY(observers_mu);
  /// Installs telemetry's and the user's observer (both: a pair that calls telemetry's
  /// first); requires observers_mu.
  void install_observers() ASYNCFLOW_REQUIRES(observers_mu);

  Mutex telemetry_mu;
  std::shared_ptr<TelemetryManager> telemetry ASYNCFLOW_GUARDED_BY(telemetry_mu);

  // Tasks of a batch whose submit() threw: failed, and kept alive until shutdown() has released
  // the backends, since the backend may have taken some of them before throwing (and run them
  // later: a finished task ignores that, a freed one would be used after free).
  Mutex refused_mu;
  std::vector<NodeRef> refused ASYNCFLOW_GUARDED_BY(refused_mu);

  Mutex shutdown_mu;
  bool shutdown_done ASYNCFLOW_GUARDED_BY(shutdown_mu) = false;
  bool shutdown_result ASYNCFLOW_GUARDED_BY(shutdown_mu) = true;  // what shutdown() returned

#ifdef ASYNCFLOW_NO_OBSERVER
  // Benchmark-only build (asyncflow_bench_no_telemetry): no observer branch at all, the
  // floor against which "telemetry off" is measured.
  static constexpr EngineObserver* obs() noexcept {
    return nullptr;
  }
  static constexpr bool has_observer() noexcept {
    return false;
  }
#else
  EngineObserver* obs() const noexcept {
    return observer.load(std::memory_order_acquire);
  }
  /// The hot-path test: relaxed, so it orders nothing around it; whoever then calls the
  /// observer loads it again with obs() (acquire).
  bool has_observer() const noexcept {
    return observer.load(std::memory_order_relaxed) != nullptr;
  }
#endif
  Backend* find_backend(std::string_view name) const noexcept ASYNCFLOW_REQUIRES(backends_mu);
  void task_finished_accounting() noexcept;
};

/// The observer's view of a node, with the storage its uids are written into: the engine
/// reports six lifecycle points per task, and building two std::strings for each was most of
/// a report's cost. Use as a temporary: `obs->on_task_queued(NodeInfo(node).info)`.
/// Not copyable (the views point into it).
class NodeInfo {
 public:
  explicit NodeInfo(const Node& node) noexcept;
  NodeInfo(const NodeInfo&) = delete;
  NodeInfo& operator=(const NodeInfo&) = delete;

  TaskInfo info;

 private:
  char uid_[kUidCapacity];
  char parent_uid_[kUidCapacity];
};

}  // namespace asyncflow::detail
