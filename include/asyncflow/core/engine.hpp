// WorkflowEngine: builds task DAGs from task factories and runs them on named backends.
#pragma once

#include <concepts>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncflow/backend/backend.hpp"
#include "asyncflow/core/coro_task.hpp"
#include "asyncflow/core/errors.hpp"
#include "asyncflow/core/observer.hpp"
#include "asyncflow/core/task_handle.hpp"
#include "asyncflow/detail/task_nodes.hpp"
#include "asyncflow/telemetry/options.hpp"

namespace asyncflow {

class TelemetryManager;  // asyncflow/telemetry/manager.hpp

/// Options of WorkflowEngine::create().
struct EngineOptions {
  /// Backends by name; the first is the default. Empty: one ThreadPoolBackend ("thread_pool").
  std::vector<std::shared_ptr<Backend>> backends{};
  /// Engine id; empty: "asyncflow.session.<8 hex>". A name, not a path: no '/', NUL, "." or
  /// "..", at most 255 bytes (create() throws asyncflow::Error otherwise).
  std::string uid{};
  /// Parent of the engine's directory `{work_dir}/{uid}`; empty: the current directory. The
  /// directory is made when first needed (a task's captured output, or work_dir()), so an
  /// engine that runs only in-process work leaves nothing on disk and runs in a read-only or
  /// deleted current directory.
  std::filesystem::path work_dir{};
  /// Replace every backend by a NoopBackend of the same name (with no backends given: one
  /// named "thread_pool", like the default engine): routing is still checked, no task body
  /// runs, each task yields a value-initialized result.
  bool dry_run = false;
};

/// Per-factory (and per-call, through `with()`) options.
struct TaskOptions {
  /// Backend to run on; empty = the engine's default. Checked when the task is defined.
  std::string backend{};
  /// Resources and execution settings forwarded to the backend.
  TaskDescription description{};
  /// Workflow id for these tasks; beats the active workflow_scope. Empty = use the scope.
  std::string workflow_id{};
};

class WorkflowEngine;
template <class F>
class RegisteredFunction;
template <class F>
class RegisteredTask;

/// RAII guard returned by WorkflowEngine::workflow_scope(). Tasks created on this engine while
/// it is alive — on this thread, or in this coroutine when opened inside a block body — carry
/// its id as their workflow id. Not copyable or movable; destroy in reverse order of creation.
/// Thread-safety: not thread-safe; it belongs to the thread (or coroutine) that opened it.
class WorkflowScope {
 public:
  WorkflowScope(const WorkflowScope&) = delete;
  WorkflowScope& operator=(const WorkflowScope&) = delete;
  ~WorkflowScope();
  /// The scope's workflow id (given, or generated "wf-<8 hex>").
  const std::string& id() const noexcept { return *frame_.workflow_id; }

 private:
  friend class WorkflowEngine;
  WorkflowScope(std::shared_ptr<detail::EngineCore> core, std::string id);
  // Shared: a scope may outlive its engine (it then ends without reporting to telemetry).
  std::shared_ptr<detail::EngineCore> core_;
  detail::ScopeFrame frame_;
  detail::CoContext* owner_;  // coroutine context the frame was pushed on; null = the thread
};

/// A callable that creates one task per call. Returned by WorkflowEngine::function_task().
///
/// Calling it with arguments creates a task and returns its TaskHandle at once. Every
/// TaskHandle among the arguments (also inside vectors, arrays, maps, pairs, tuples and
/// optionals) is a dependency: the task runs after all of them finished, and receives their
/// values in their place. The same handle passed twice counts once.
/// Copyable; thread-safe to call. Calling it after the engine was shut down (or destroyed)
/// throws EngineShutdownError.
template <class F>
class FunctionTask {
 public:
  template <class... Args>
  requires std::invocable<const F&, detail::passed_t<std::decay_t<Args>>...>
  auto operator()(Args&&... args) const {
    using R = std::invoke_result_t<const F&, detail::passed_t<std::decay_t<Args>>...>;
    static_assert(!detail::is_coro_task<std::remove_cvref_t<R>>::value,
                  "function_task bodies run on a backend thread and cannot be coroutines; "
                  "use WorkflowEngine::block() for a body that co_awaits");
    using Result = std::remove_cvref_t<R>;
    using Node = detail::FunctionNode<Result, F, std::decay_t<Args>...>;
    return launch<Result, Node>(std::forward<Args>(args)...);
  }

  /// A factory with the same function and call-time overrides (backend, description,
  /// workflow id). Throws asyncflow::Error when the backend is unknown.
  FunctionTask with(const TaskOptions& options) const {
    return FunctionTask(core_, def_->name, def_->kind, def_->fn, options, def_->registered);
  }
  const std::string& name() const noexcept { return def_->name; }

 protected:
  friend class WorkflowEngine;
  FunctionTask(std::shared_ptr<detail::EngineCore> core, std::string task_name, TaskKind kind,
               std::shared_ptr<const F> fn, const TaskOptions& options, bool registered = false)
      : core_(std::move(core)) {
    auto def = std::make_shared<detail::CallableDefinition<F>>();
    def->name = std::move(task_name);
    def->kind = kind;
    def->registered = registered;
    if (kind == TaskKind::kFunction) {
      def->backend =
          detail::engine_function_backend(core_.get(), options.backend, def->name, registered);
    } else if (kind == TaskKind::kExecutable) {
      def->backend = detail::engine_executable_backend(core_.get(), options.backend, def->name);
    } else if (!options.backend.empty()) {
      throw Error("block '" + def->name +
                  "': blocks run in the engine and cannot be routed "
                  "to backend '" +
                  options.backend + "'; route the tasks inside it instead");
    }
    detail::check_task_description(options.description, def->name);
    def->description = options.description;
    if (!options.workflow_id.empty())
      def->workflow_id = std::make_shared<const std::string>(options.workflow_id);
    def->fn = std::move(fn);
    def_ = std::move(def);
  }

  template <class Result, class Node, class... Args>
  TaskHandle<Result> launch(Args&&... args) const {
    detail::DepCollector deps;
    detail::visit_dependencies(deps, args...);
    detail::engine_begin_create(core_.get());
    Node* node;
    try {
      node = new Node(std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...));
    } catch (...) {
      detail::engine_abort_create(core_.get());
      throw;
    }
    node->def = def_;
    // One reference for the handle, taken before launch: a noop backend may finish the task
    // (and the engine drop its reference) before launch returns.
    auto handle = detail::HandleAccess::wrap<Result>(detail::NodeRef(node));
    detail::engine_launch(core_.get(), node, deps.nodes());
    return handle;
  }

  // Shared so that a factory outliving its engine fails cleanly (EngineShutdownError).
  std::shared_ptr<detail::EngineCore> core_;
  std::shared_ptr<const detail::CallableDefinition<F>> def_;
};

/// A callable that starts one block (sub-workflow) per call. Returned by
/// WorkflowEngine::block(). The body is a coroutine returning Task<T>; the block's handle is a
/// TaskHandle<T>, usable as a dependency. Tasks created in the body carry the block's uid as
/// workflow id, are canceled with the block, and the block finishes only after all of them.
/// Thread-safety: copyable; thread-safe to call, like FunctionTask.
template <class F>
class BlockTask : private FunctionTask<F> {
 public:
  template <class... Args>
  requires std::invocable<const F&, detail::passed_t<std::decay_t<Args>>...>
  auto operator()(Args&&... args) const {
    using R = std::remove_cvref_t<
        std::invoke_result_t<const F&, detail::passed_t<std::decay_t<Args>>...>>;
    static_assert(detail::is_coro_task<R>::value,
                  "a block body must be a coroutine returning asyncflow::Task<T>");
    using Result = typename R::value_type;
    using Node = detail::BlockNode<Result, F, std::decay_t<Args>...>;
    return this->template launch<Result, Node>(std::forward<Args>(args)...);
  }
  BlockTask with(const TaskOptions& options) const {
    return BlockTask(this->core_, this->def_->name, this->def_->fn, options);
  }
  using FunctionTask<F>::name;

 private:
  friend class WorkflowEngine;
  BlockTask(std::shared_ptr<detail::EngineCore> core, std::string task_name,
            std::shared_ptr<const F> fn, const TaskOptions& options)
      : FunctionTask<F>(std::move(core), std::move(task_name), TaskKind::kBlock, std::move(fn),
                        options) {}
};

/// A callable that creates one executable task per call. Returned by
/// WorkflowEngine::executable_task(). Arguments and dependencies work as for FunctionTask;
/// the builder receives the dependencies' values once they are all done, and returns the
/// command: a std::vector<std::string> argv (run directly, no shell), a Command, or a
/// std::string command line (run by /bin/sh -c; requires TaskDescription::shell = true).
/// The handle is a TaskHandle<std::string>: the program's stdout, or the path of the stdout
/// file with TaskDescription::capture_stdio.
/// Thread-safety: copyable; thread-safe to call, like FunctionTask.
template <class F>
class ExecutableTask : private FunctionTask<F> {
 public:
  template <class... Args>
  requires std::invocable<const F&, detail::passed_t<std::decay_t<Args>>...> TaskHandle<std::string>
  operator()(Args&&... args) const {
    using R = std::remove_cvref_t<
        std::invoke_result_t<const F&, detail::passed_t<std::decay_t<Args>>...>>;
    static_assert(std::is_same_v<R, std::vector<std::string>> || std::is_same_v<R, Command> ||
                      std::is_convertible_v<R, std::string>,
                  "an executable task's builder returns std::vector<std::string> (argv), "
                  "asyncflow::Command, or a std::string command line (with shell = true)");
    using Node = detail::ExecutableNode<F, std::decay_t<Args>...>;
    return this->template launch<std::string, Node>(std::forward<Args>(args)...);
  }
  ExecutableTask with(const TaskOptions& options) const {
    return ExecutableTask(this->core_, this->def_->name, this->def_->fn, options);
  }
  using FunctionTask<F>::name;

 private:
  friend class WorkflowEngine;
  ExecutableTask(std::shared_ptr<detail::EngineCore> core, std::string task_name,
                 std::shared_ptr<const F> fn, const TaskOptions& options)
      : FunctionTask<F>(std::move(core), std::move(task_name), TaskKind::kExecutable, std::move(fn),
                        options) {}
};

/// The workflow engine: task factories, dependency scheduling, scopes, backends.
///
/// @code
///   auto flow = asyncflow::WorkflowEngine::create({});
///   auto load = flow->function_task("load", [](int n) { return std::vector<int>(n, 1); });
///   auto sum  = flow->function_task("sum", [](const std::vector<int>& v) {
///     return std::accumulate(v.begin(), v.end(), 0); });
///   int total = sum(load(10)).get();   // 10
///   flow->shutdown();
/// @endcode
/// Thread-safe: factories, scopes and shutdown may be used from any thread.
/// The destructor calls shutdown().
class WorkflowEngine {
 public:
  /// Builds an engine. Throws asyncflow::Error on a bad option (duplicate backend names, a
  /// null backend) or when the work dir cannot be created (the message names the path).
  static std::unique_ptr<WorkflowEngine> create(EngineOptions options = {});
  ~WorkflowEngine();
  WorkflowEngine(const WorkflowEngine&) = delete;
  WorkflowEngine& operator=(const WorkflowEngine&) = delete;

  /// Engine id ("asyncflow.session.<8 hex>" unless given).
  const std::string& uid() const noexcept;
  /// The engine's own directory, `{work_dir}/{uid}`, made now if it was not yet. Throws
  /// asyncflow::Error naming the directory and why when it cannot be made, or when something
  /// other than a directory (a symbolic link, say) is in its place.
  const std::filesystem::path& work_dir() const;
  /// The backend named `name` (empty: the default). Throws asyncflow::Error when unknown.
  Backend& backend(std::string_view name = {}) const;
  /// Backend names, default first.
  std::vector<std::string> backend_names() const;

  /// Defines a function task. `fn` must be callable as `const`, from any thread.
  /// Throws asyncflow::Error when `options.backend` names no backend of this engine.
  template <class F>
  FunctionTask<std::decay_t<F>> function_task(std::string name, F&& fn, TaskOptions options = {}) {
    using Fn = std::decay_t<F>;
    return FunctionTask<Fn>(core_, std::move(name), TaskKind::kFunction,
                            std::make_shared<const Fn>(std::forward<F>(fn)), options);
  }

  /// Defines a task factory for a registered function (asyncflow/core/registered_function.hpp):
  /// on an in-process backend it is called directly; on a ProcessBackend it runs in a worker
  /// process, its arguments and result serialized as JSON. Routing as for function tasks.
  template <class F>
  RegisteredTask<F> function_task(const RegisteredFunction<F>& fn, TaskOptions options = {});

  /// Defines an executable task: `builder` receives the resolved arguments and returns the
  /// command (see ExecutableTask). Runs on `options.backend`, which must run executables;
  /// unset: the default backend if it does, else the first backend that does (a
  /// ProcessBackend). Throws asyncflow::Error when there is none, naming the fix.
  template <class F>
  ExecutableTask<std::decay_t<F>> executable_task(std::string name, F&& builder,
                                                  TaskOptions options = {}) {
    using Fn = std::decay_t<F>;
    return ExecutableTask<Fn>(core_, std::move(name),
                              std::make_shared<const Fn>(std::forward<F>(builder)), options);
  }

  /// Defines a block: a nestable sub-workflow whose body is a coroutine returning Task<T>.
  /// The body runs on whichever thread resolves it and resumes on the thread that finished
  /// what it awaited; it should only orchestrate (create tasks, co_await), never block.
  template <class F>
  BlockTask<std::decay_t<F>> block(std::string name, F&& body, TaskOptions options = {}) {
    using Fn = std::decay_t<F>;
    return BlockTask<Fn>(core_, std::move(name), std::make_shared<const Fn>(std::forward<F>(body)),
                         options);
  }

  /// Opens a workflow scope (RAII). `id` empty: generates "wf-<8 hex>".
  [[nodiscard]] WorkflowScope workflow_scope(std::string id = {});

  /// Starts telemetry for this engine's session (session id = uid()): lifecycle events of
  /// every task and block created from now on, spans, metrics, the JSONL checkpoint when
  /// `options.checkpoint_path` is set. Returns the running manager (include
  /// asyncflow/telemetry/manager.hpp to use it); shutdown() stops it. Custom events emitted
  /// inside a task or a workflow scope of this engine get the task's id and the workflow's id.
  /// Throws asyncflow::Error when telemetry was already started on this engine or an option
  /// is invalid (e.g. an uncreatable checkpoint path — the engine is unaffected), and
  /// EngineShutdownError after shutdown().
  std::shared_ptr<TelemetryManager> start_telemetry(TelemetryOptions options = {});
  /// The manager start_telemetry() returned. Throws asyncflow::Error when it was not started.
  std::shared_ptr<TelemetryManager> telemetry() const;

  /// Installs a lifecycle observer of your own; null removes it. Telemetry (start_telemetry)
  /// keeps its own observer beside it: both are called, telemetry's first. The previous
  /// observer is kept alive until the engine is destroyed, so calls in flight stay valid.
  void set_observer(std::shared_ptr<EngineObserver> observer);

  /// Shuts down: refuses new work (EngineShutdownError), cancels every task that has not
  /// started, waits for running tasks, stops telemetry, then releases the backends (joining
  /// their threads unless someone else still owns them). Idempotent; safe from several
  /// threads. Returns false when telemetry lost data (the manager's stop(): what was lost is
  /// in telemetry()->losses(), and was logged); true without telemetry. Throws
  /// asyncflow::Error, and does nothing, when called from inside a task or block body of this
  /// engine (it would wait for itself) or from a telemetry subscriber of this engine (it would
  /// wait for that subscriber). The destructor calls it too: destroying the engine from inside
  /// its own task therefore ends the program (std::terminate) with that message, not a hang.
  bool shutdown();
  /// True once shutdown() began.
  bool is_shut_down() const noexcept;
  /// Tasks and blocks created but not yet finished.
  std::size_t active_tasks() const noexcept;

 private:
  explicit WorkflowEngine(EngineOptions options);
  std::shared_ptr<detail::EngineCore> core_;  // shared with the factories
};

}  // namespace asyncflow
