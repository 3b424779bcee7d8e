// Internal: the typed nodes behind function tasks and blocks.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <tuple>
#include <vector>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/core/coro_task.hpp"
#include "asyncflow/detail/arguments.hpp"
#include "asyncflow/detail/engine_hooks.hpp"

namespace asyncflow::detail {

/// A definition that owns a callable (shared, so `with()` copies never copy the callable).
template <class F>
struct CallableDefinition final : Definition {
  std::shared_ptr<const F> fn;
};

/// Calls `fn` with the stored arguments, dependencies replaced by their values.
template <class F, class... A>
decltype(auto) call_with_arguments(const F& fn, std::tuple<A...>& args) {
  return std::apply(
      [&](A&... a) -> decltype(auto) { return std::invoke(fn, ArgTraits<A>::pass(a)...); }, args);
}

/// A task whose body is the definition's function called with the stored arguments.
template <class R, class F, class... A>
class CallNode : public ValueNode<R> {
 public:
  explicit CallNode(std::tuple<A...>&& args) : args_(std::move(args)) {}

  void invoke() override {
    const F& fn = *static_cast<const CallableDefinition<F>&>(*this->def).fn;
    if constexpr (std::is_void_v<R>) {
      call_with_arguments(fn, *args_);
    } else {
      this->value_.emplace(call_with_arguments(fn, *args_));
    }
  }
  void release_inputs() noexcept override { args_.reset(); }

 protected:
  std::optional<std::tuple<A...>> args_;
};

/// A function task.
template <class R, class F, class... A>
class FunctionNode final : public CallNode<R, F, A...> {
 public:
  using CallNode<R, F, A...>::CallNode;
};

/// An executable task: the builder turns resolved arguments into a Command when the backend
/// is about to start it; the result is the program's output (stdout text, or its file path).
template <class F, class... A>
class ExecutableNode final : public ValueNode<std::string> {
 public:
  explicit ExecutableNode(std::tuple<A...>&& args) : args_(std::move(args)) {}

  void invoke() override { executable_run_in_process(*this); }
  Command build_command() override {
    const F& fn = *static_cast<const CallableDefinition<F>&>(*this->def).fn;
    return make_command(call_with_arguments(fn, *args_), *this);
  }
  void store_output(std::string output) override { this->value_.emplace(std::move(output)); }
  void release_inputs() noexcept override { args_.reset(); }

 private:
  std::optional<std::tuple<A...>> args_;
};

/// Members and completion accounting of one block. A block finishes when its body has
/// returned and every task created inside it has finished.
struct BlockState {
  std::atomic<std::int64_t> outstanding{1};  // the body + unfinished members
  Mutex mu;
  std::vector<NodeRef> members ASYNCFLOW_GUARDED_BY(mu);  // cleared when the block finishes
  std::exception_ptr body_error;
  CoContext ctx;
  ScopeFrame frame;
};

template <class T, class F, class... A>
class BlockNode final : public ValueNode<T> {
 public:
  explicit BlockNode(std::tuple<A...>&& args) : args_(std::move(args)) {}

  void invoke() override {}  // blocks never reach a backend
  BlockState* block_state() noexcept override { return &state_; }

  void start_body(CoContext& ctx) noexcept override {
    const F& fn = *static_cast<const CallableDefinition<F>&>(*this->def).fn;
    try {
      body_.emplace(call_with_arguments(fn, *args_));
    } catch (...) {
      block_body_done(this, std::current_exception());
      return;
    }
    auto h = CoroAccess::handle(*body_);
    h.promise().on_done = &BlockNode::on_body_done;
    h.promise().on_done_arg = this;
    CoContext* saved = current_co_context();
    current_co_context() = &ctx;
    h.resume();  // runs until the first suspension; may finish (and free) the block
    current_co_context() = saved;
  }

  // The coroutine frame (body_) lives until the node is destroyed.
  void release_inputs() noexcept override { args_.reset(); }

 private:
  static void on_body_done(void* arg) noexcept {
    auto* self = static_cast<BlockNode*>(arg);
    std::exception_ptr error;
    try {
      if constexpr (std::is_void_v<T>) {
        CoroAccess::take_result(*self->body_);
      } else {
        self->value_.emplace(CoroAccess::take_result(*self->body_));
      }
    } catch (...) {
      error = std::current_exception();
    }
    block_body_done(self, std::move(error));
  }

  std::optional<std::tuple<A...>> args_;
  std::optional<Task<T>> body_;
  BlockState state_;
};

}  // namespace asyncflow::detail
