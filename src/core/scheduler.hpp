// Private: the scheduler's entry points (see scheduler.cpp for the model).
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "asyncflow/core/task_state.hpp"
#include "asyncflow/detail/node.hpp"

namespace asyncflow::detail {

/// Marks a node's waiter list closed: the node finished.
inline Waiter* const kClosedWaiters = reinterpret_cast<Waiter*>(std::uintptr_t{1});

/// Entry-point guard: work queued on this thread while any guard is alive runs when the
/// outermost one is destroyed.
class DispatchGuard {
 public:
  DispatchGuard() noexcept;
  ~DispatchGuard();
  DispatchGuard(const DispatchGuard&) = delete;
  DispatchGuard& operator=(const DispatchGuard&) = delete;
};

/// Moves a pending node whose dependencies all finished to kResolved and queues its start.
void make_ready(Node* node) noexcept;
/// Moves `node` from one of the `allowed_from` states to kFinishing; false (and nothing done)
/// when it is elsewhere, or already finishing. `was`: the state it left.
bool claim_finish(Node* node, std::uint32_t allowed_from, NodeState* was = nullptr) noexcept;
/// How a task ended besides its state: whether it ran, and what its process used.
struct FinishDetails {
  bool ran = false;                  ///< it left kRunning (it started)
  const TaskUsage* usage = nullptr;  ///< measured by its backend, or null
};
/// Ends a node claim_finish() claimed: records `error`, reports, publishes `to`, wakes waiters.
void finish_claimed(Node* node, TaskState to, std::exception_ptr error,
                    FinishDetails details = {}) noexcept;
/// Moves `node` from one of the states in `allowed_from` (bit set of NodeState) to terminal
/// `to`, then runs everything that follows: observer, waiters, block accounting, release.
/// Returns false when the node was not in an allowed state (someone else finished it).
bool finish(Node* node, std::uint32_t allowed_from, TaskState to, std::exception_ptr error,
            const TaskUsage* usage = nullptr) noexcept;
bool cancel(Node* node) noexcept;
/// Backend entry: runs a submitted task (dry: without its body).
void run_task(Node* node, bool dry) noexcept;
/// Out-of-process backends' reports (BackendTask::report_*); see backend.hpp.
bool report_task_started(Node* node) noexcept;
void report_task_completed(Node* node, std::string output, const TaskUsage* usage) noexcept;
void report_task_failed(Node* node, std::exception_ptr error, const TaskUsage* usage) noexcept;
void report_task_canceled(Node* node, std::string_view how) noexcept;
/// The function task running on this thread, or null.
Node* running_task() noexcept;

}  // namespace asyncflow::detail
