// Task<T>: the coroutine type of block bodies. A block body may co_await task handles, other
// blocks and other Task<T>s; while it waits, no thread is held.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace asyncflow {

template <class T>
class Task;

namespace detail {
struct CoroAccess;

/// Called once when a Task's coroutine finishes (used by the block that owns the body).
using TaskDoneHook = void (*)(void* arg) noexcept;

template <class T>
struct TaskPromiseBase {
  std::coroutine_handle<> continuation;
  TaskDoneHook on_done = nullptr;
  void* on_done_arg = nullptr;
  std::exception_ptr error;

  std::suspend_always initial_suspend() const noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) const noexcept {
      // Copy out first: the hook may destroy this coroutine frame.
      auto& p = h.promise();
      std::coroutine_handle<> next = p.continuation;
      TaskDoneHook hook = p.on_done;
      void* arg = p.on_done_arg;
      if (hook) hook(arg);
      return next ? next : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
};

template <class T>
struct TaskPromise : TaskPromiseBase<T> {
  std::optional<T> value;
  Task<T> get_return_object() noexcept;
  template <class U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& v) { value.emplace(std::forward<U>(v)); }
};

template <>
struct TaskPromise<void> : TaskPromiseBase<void> {
  Task<void> get_return_object() noexcept;
  void return_void() const noexcept {}
};

}  // namespace detail

/// A lazily started coroutine producing a T. Move-only.
///
/// Use it as the return type of a block body, or of helper coroutines a body co_awaits:
/// @code
///   auto pipeline = flow->block("pipeline", [&](int seed) -> asyncflow::Task<double> {
///     auto model = co_await train(preprocess(load(seed)));   // suspends, holds no thread
///     co_return co_await evaluate(model);
///   });
/// @endcode
/// Thread-safety: not thread-safe; a Task belongs to the coroutine that awaits it.
template <class T>
class Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }

  // Awaiting a Task starts it and resumes the awaiter when it finishes (symmetric transfer).
  bool await_ready() const noexcept { return !h_ || h_.done(); }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
    h_.promise().continuation = caller;
    return h_;
  }
  T await_resume() { return take_result(); }

 private:
  friend promise_type;
  friend struct detail::CoroAccess;
  /// The finished coroutine's value, or its exception rethrown.
  T take_result() {
    auto& p = h_.promise();
    if (p.error) std::rethrow_exception(p.error);
    if constexpr (!std::is_void_v<T>) return std::move(*p.value);
  }
  explicit Task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}

/// A block's access to its body coroutine (the handle, to start it; the result, once done).
struct CoroAccess {
  template <class T>
  static std::coroutine_handle<TaskPromise<T>> handle(const Task<T>& task) noexcept {
    return task.h_;
  }
  template <class T>
  static T take_result(Task<T>& task) {
    return task.take_result();
  }
};

template <class T>
struct is_coro_task : std::false_type {};
template <class T>
struct is_coro_task<Task<T>> : std::true_type {};
}  // namespace detail

}  // namespace asyncflow
