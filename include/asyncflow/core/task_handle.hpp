// TaskHandle<T>: the copyable handle a task factory returns. Pass it to another task to make a
// dependency; get() / wait_for() block; co_await suspends a coroutine without a thread.
#pragma once

#include <chrono>
#include <coroutine>
#include <exception>
#include <string>

#include "asyncflow/core/errors.hpp"
#include "asyncflow/core/task_state.hpp"
#include "asyncflow/detail/context.hpp"
#include "asyncflow/detail/node.hpp"

namespace asyncflow {

namespace detail {
struct HandleAccess;
/// Throws when a blocking wait on an unfinished task would hold a thread inside a block body.
void check_blocking_wait_allowed(const Node& node);
/// Cancels `node` (routing to its owning backend when submitted). Returns false if finished.
bool cancel_node(Node& node) noexcept;
/// Throws asyncflow::Error: `member` was called on an empty handle.
[[noreturn]] void throw_empty_handle(const char* member);
}  // namespace detail

/// An untyped handle to a task or block: identity, state, waiting and cancel.
///
/// Cheap to copy (one atomic increment); all copies refer to the same task. A default-built
/// or moved-from handle is empty (`valid() == false`): every other member throws
/// asyncflow::Error on it, and passing it to a task factory throws too.
/// Thread-safe: every member may be called from any thread.
class AnyTask {
 public:
  AnyTask() = default;

  bool valid() const noexcept { return static_cast<bool>(node_); }
  /// "task.000001" or "block.000001", unique within the engine.
  std::string uid() const { return node("uid").uid(); }
  /// The name given to the factory.
  const std::string& name() const { return node("name").name(); }
  /// Current state; never blocks.
  TaskState state() const { return node("state").public_state(); }
  /// True once the task reached kDone, kFailed or kCanceled.
  bool done() const { return node("done").finished(); }

  /// Blocks until the task finishes (never throws the task's error).
  /// Inside a block body use `co_await` instead: a blocking wait there throws asyncflow::Error.
  void wait() const {
    const detail::Node& n = node("wait");
    if (!n.finished()) detail::check_blocking_wait_allowed(n);
    n.wait();
  }
  /// Waits at most `timeout`; returns true when the task finished.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
    const detail::Node& n = node("wait_for");
    if (n.finished()) return true;
    detail::check_blocking_wait_allowed(n);
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
    return n.wait(ns < 0 ? 0 : ns);
  }

  /// Requests cancellation. Pending tasks are canceled at once (with their dependents); a
  /// submitted or running task is handed to its owning backend's cancel(); a block cancels its
  /// members. Returns false when the task had already finished.
  bool cancel() const {
    if (!node_) detail::throw_empty_handle("cancel");
    return detail::cancel_node(*node_.get());
  }

  /// The error of a failed or canceled task (null otherwise, or while unfinished).
  std::exception_ptr error() const {
    const detail::Node& n = node("error");
    return n.finished() ? n.error : std::exception_ptr{};
  }

 protected:
  friend struct detail::HandleAccess;
  explicit AnyTask(detail::NodeRef node) noexcept : node_(std::move(node)) {}
  void rethrow_if_error() const {
    if (node_->error) std::rethrow_exception(node_->error);
  }
  /// The task, or asyncflow::Error naming `member` when the handle is empty.
  const detail::Node& node(const char* member) const {
    if (!node_) [[unlikely]]
      detail::throw_empty_handle(member);
    return *node_.get();
  }
  detail::NodeRef node_;
};

namespace detail {
/// Awaiter used by TaskHandle<T>::operator co_await.
template <class T>
struct HandleAwaiter final : Waiter {
  Node* node;
  std::coroutine_handle<> handle;
  CoContext* ctx = nullptr;

  explicit HandleAwaiter(Node* n) noexcept : node(n) {}
  bool await_ready() const noexcept { return node->finished(); }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    handle = h;
    ctx = current_co_context();
    return node->add_waiter(this);  // false: finished meanwhile, resume at once
  }
  decltype(auto) await_resume() const {
    if (node->error) std::rethrow_exception(node->error);
    if constexpr (!std::is_void_v<T>) return static_cast<const ValueNode<T>*>(node)->value();
  }
  void fire() noexcept override { schedule_resume(handle, ctx); }
};
}  // namespace detail

/// A typed handle to a task or block producing a T.
///
/// @code
///   auto sum = flow->function_task("sum", [](int a, int b) { return a + b; });
///   TaskHandle<int> h = sum(1, 2);
///   int v = h.get();                      // blocks; rethrows the task's error
///   auto later = sum(h, 10);              // h is a dependency; its value is passed in
/// @endcode
/// Thread-safety: as AnyTask — every member may be called from any thread.
template <class T>
class TaskHandle : public AnyTask {
 public:
  using value_type = T;
  TaskHandle() = default;

  /// Blocks until finished and returns the value, or rethrows the task's error
  /// (DependencyFailure, TaskCanceledError, or the exception its body threw).
  const T& get() const {
    (void)node("get");
    wait();
    rethrow_if_error();
    return static_cast<const detail::ValueNode<T>*>(node_.get())->value();
  }
  /// Suspends the awaiting coroutine (no thread is held) until finished; yields the value or
  /// throws the error.
  detail::HandleAwaiter<T> operator co_await() const {
    if (!node_) detail::throw_empty_handle("operator co_await");
    return detail::HandleAwaiter<T>(node_.get());
  }

 private:
  friend struct detail::HandleAccess;
  explicit TaskHandle(detail::NodeRef node) noexcept : AnyTask(std::move(node)) {}
};

/// Thread-safety: as AnyTask — every member may be called from any thread.
template <>
class TaskHandle<void> : public AnyTask {
 public:
  using value_type = void;
  TaskHandle() = default;
  void get() const {
    (void)node("get");
    wait();
    rethrow_if_error();
  }
  detail::HandleAwaiter<void> operator co_await() const {
    if (!node_) detail::throw_empty_handle("operator co_await");
    return detail::HandleAwaiter<void>(node_.get());
  }

 private:
  friend struct detail::HandleAccess;
  explicit TaskHandle(detail::NodeRef node) noexcept : AnyTask(std::move(node)) {}
};

namespace detail {
/// The engine's access to what a handle wraps; user code has no way to reach scheduler state.
struct HandleAccess {
  static Node* node(const AnyTask& handle) noexcept { return handle.node_.get(); }
  template <class T>
  static TaskHandle<T> wrap(NodeRef node) noexcept {
    return TaskHandle<T>(std::move(node));
  }
};
}  // namespace detail

}  // namespace asyncflow
