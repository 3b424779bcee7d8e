// Graph execution: wiring new tasks, readiness, submission batches, completion, cancel.
//
// There is no scheduler thread and no polling (reference flaw §8.1: a 1 s poll per level).
// Whatever thread finishes a task — a pool worker, the noop backend inside submit(), a user
// thread canceling — runs the consequences itself: it fires the task's waiters, which
// decrement dependents' join counters; a counter reaching zero queues that dependent on the
// thread's dispatcher. The dispatcher is a per-thread trampoline: the outermost entry point
// (launch, run, cancel, resume) drains it, so completions never recurse (a noop chain of a
// million levels runs in constant stack), and tasks made ready together are handed to their
// backend as one batch. Work per completion is O(number of its dependents).
#include <optional>
#include <span>
#include <vector>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/core/engine.hpp"
#include "asyncflow/core/this_task.hpp"
#include "asyncflow/detail/task_nodes.hpp"
#include "engine_core.hpp"
#include "scheduler.hpp"
#include "thread_call_meter.hpp"

namespace asyncflow::detail {

namespace {

struct Job {
  Node* node = nullptr;  // start this node (reference held), or
  std::coroutine_handle<> resume;
  CoContext* ctx = nullptr;
};

struct Batch {
  Backend* backend = nullptr;
  EngineCore* engine = nullptr;  // one engine per batch: flush_batches() pins it
  std::vector<BackendTask*> tasks;
};

struct Dispatcher {
  int depth = 0;
  std::vector<Job> jobs;
  std::size_t head = 0;
  std::vector<Batch> batches;  // one per (backend, engine) seen on this thread; emptied by flush
};

thread_local Dispatcher tl_dispatcher;
thread_local Node* tl_running_task = nullptr;

constexpr std::uint32_t bit(NodeState s) {
  return 1u << static_cast<std::uint32_t>(s);
}
constexpr std::uint32_t kNotStarted = bit(NodeState::kPending) | bit(NodeState::kResolved);

void start_node(Node* node) noexcept;

void add_to_batch(Node* node) {
  Dispatcher& d = tl_dispatcher;
  Backend* backend = node->def->backend;
  for (Batch& b : d.batches) {
    if (b.backend == backend && b.engine == node->engine) {
      b.tasks.push_back(node);
      return;
    }
  }
  d.batches.push_back(Batch{backend, node->engine, {}});
  d.batches.back().tasks.push_back(node);
}

void fail_unsubmitted(std::span<BackendTask* const> tasks, const std::exception_ptr& error) {
  for (BackendTask* t : tasks) {
    Node* node = static_cast<Node*>(t);
    node->add_ref();
    {
      MutexLock lock(node->engine->refused_mu);
      node->engine->refused.push_back(NodeRef::adopt(node));
    }
    finish(node, bit(NodeState::kSubmitted), TaskState::kFailed, error);
  }
}

/// Counts as live work of `engine` while a backend call about its tasks runs: the tasks may
/// finish on other threads before the call returns, and shutdown() (which waits for nothing
/// live) must not release the backend while this thread is still inside it.
class EnginePin {
 public:
  explicit EnginePin(EngineCore* engine) noexcept : engine_(engine) {
    engine_->live.fetch_add(1, std::memory_order_acq_rel);
  }
  ~EnginePin() { engine_->task_finished_accounting(); }
  EnginePin(const EnginePin&) = delete;
  EnginePin& operator=(const EnginePin&) = delete;

 private:
  EngineCore* engine_;
};

void flush_batches() {
  Dispatcher& d = tl_dispatcher;
  for (std::size_t i = 0; i < d.batches.size(); ++i) {
    if (d.batches[i].tasks.empty()) continue;
    // Move the batch out: submit() may complete tasks inline and refill this thread's batches.
    std::vector<BackendTask*> tasks;
    tasks.swap(d.batches[i].tasks);
    Backend* backend = d.batches[i].backend;
    EnginePin pin(d.batches[i].engine);
    try {
      backend->submit(tasks);
    } catch (...) {
      fail_unsubmitted(tasks, std::current_exception());
    }
    if (d.batches[i].tasks.empty()) {
      tasks.clear();
      d.batches[i].tasks.swap(tasks);  // keep the capacity for the next batch
    }
  }
}

bool batches_pending() {
  for (const Batch& b : tl_dispatcher.batches) {
    if (!b.tasks.empty()) return true;
  }
  return false;
}

void drain() noexcept {
  Dispatcher& d = tl_dispatcher;
  for (;;) {
    while (d.head < d.jobs.size()) {
      Job job = d.jobs[d.head++];
      if (job.node != nullptr) {
        start_node(job.node);
        job.node->release();
      } else {
        CoContext* saved = current_co_context();
        current_co_context() = job.ctx;
        job.resume.resume();
        current_co_context() = saved;
      }
    }
    d.jobs.clear();
    d.head = 0;
    if (!batches_pending()) break;
    flush_batches();
  }
}

void enqueue(Job job) noexcept {
  DispatchGuard guard;
  try {
    tl_dispatcher.jobs.push_back(job);
  } catch (...) {
    std::terminate();  // out of memory inside the scheduler: nothing sane to do
  }
}

// Observer calls live out of line, marked cold: the inline part at each lifecycle point is a
// load and a not-taken branch, and the hot scheduler functions stay small enough to inline
// (building a TaskInfo inline made the telemetry-off engine measurably slower).
using Notify = void (EngineObserver::*)(const TaskInfo&) noexcept;

[[gnu::cold, gnu::noinline]] void notify(const Node* node, Notify method) {
  if (EngineObserver* obs = node->engine->obs()) (obs->*method)(NodeInfo(*node).info);
}

[[gnu::cold, gnu::noinline]] void notify_finished(const Node* node, TaskState to,
                                                  FinishDetails details) {
  if (EngineObserver* obs = node->engine->obs()) {
    NodeInfo info(*node);
    info.info.ran = details.ran;
    info.info.usage = details.usage;
    obs->on_task_finished(info.info, to, node->error);
  }
}

[[gnu::cold, gnu::noinline]] void notify_created(const Node* node, std::span<Node* const> deps) {
  EngineObserver* obs = node->engine->obs();
  if (obs == nullptr) return;
  std::vector<std::string> depends_on;
  depends_on.reserve(deps.size());
  for (Node* d : deps) depends_on.push_back(d->uid());
  obs->on_task_created(NodeInfo(*node).info, depends_on);
}

/// One relaxed load and a branch when no observer is installed.
#define ASYNCFLOW_NOTIFY(node, method)                 \
  do {                                                 \
    if ((node)->engine->has_observer()) [[unlikely]] { \
      notify(node, &EngineObserver::method);           \
    }                                                  \
  } while (0)

std::exception_ptr dependency_failure(Node* node) {
  std::vector<std::string> failed;
  std::exception_ptr cause;
  bool any_canceled = false;
  for (std::uint32_t i = 0; i < node->dep_count; ++i) {
    Node* dep = node->deps[i].dep;
    auto s = dep->state.load(std::memory_order_acquire);
    if (s == NodeState::kDone) continue;
    if (s == NodeState::kCanceled) any_canceled = true;
    failed.push_back(dep->name() + " (" + dep->uid() + ")");
    if (!cause) cause = dep->error;
  }
  if (failed.empty()) return {};
  // The cause is the first failed dependency's own error. When that is a DependencyFailure,
  // keep a copy of it whose cause is cut to the root: a chain of N failed levels then holds
  // three errors, not N (a failed 300,000-step chain crashed in the recursive destruction of
  // its causes, and a failed 1M chain kept 551 MB of them alive).
  std::exception_ptr root = cause;
  try {
    if (cause) std::rethrow_exception(cause);
  } catch (const DependencyFailure& df) {
    root = df.root_cause() ? df.root_cause() : cause;
    if (df.cause() != df.root_cause()) {
      cause = std::make_exception_ptr(
          DependencyFailure(df.what(), df.failed_dependencies(), df.root_cause(), df.root_cause()));
    }
  } catch (...) {  // an original error: it is its own root
  }
  std::string msg = "Cannot execute '" + node->name() + "' (" + node->uid() + ") due to " +
                    (any_canceled ? "canceled" : "failed") + " dependenc" +
                    (failed.size() == 1 ? "y " : "ies ");
  for (std::size_t i = 0; i < failed.size(); ++i) msg += (i ? ", " : "") + failed[i];
  return std::make_exception_ptr(DependencyFailure(std::move(msg), std::move(failed), cause, root));
}

bool any_dependency_canceled(const Node* node) {
  for (std::uint32_t i = 0; i < node->dep_count; ++i) {
    if (node->deps[i].dep->state.load(std::memory_order_acquire) == NodeState::kCanceled)
      return true;
  }
  return false;
}

std::exception_ptr canceled_error(const Node* node, const char* why) {
  return std::make_exception_ptr(
      TaskCanceledError("task '" + node->name() + "' (" + node->uid() + ") was canceled" + why));
}

// A resolved node belongs to the dispatcher job that starts it: cancel() only flags it (it
// finishes pending nodes itself), so no other thread finishes it and releases its upstream
// references while start_node() reads them. The flag is checked here, and again after the
// node became submitted (seq_cst on both sides, so cancel() either sees it submitted and asks
// its backend, or start_node() sees the flag).
void start_node(Node* node) noexcept {
  if (node->finished()) return;  // canceled while pending
  if (node->stop.load(std::memory_order_seq_cst)) {
    finish(node, kNotStarted, TaskState::kCanceled, canceled_error(node, ""));
    return;
  }
  ASYNCFLOW_NOTIFY(node, on_task_resolved);
  if (std::exception_ptr df = dependency_failure(node)) {
    // Cancellation wins over failure, as in the reference: a dependent of a canceled task is
    // canceled; otherwise it fails. Either way get() throws the DependencyFailure.
    TaskState to = any_dependency_canceled(node) ? TaskState::kCanceled : TaskState::kFailed;
    finish(node, kNotStarted, to, df);
    return;
  }
  if (node->engine->shutting_down.load(std::memory_order_acquire)) {
    finish(node, kNotStarted, TaskState::kCanceled,
           canceled_error(node, " by engine shutdown before it started"));
    return;
  }
  if (node->kind() == TaskKind::kBlock) {
    NodeState expected = NodeState::kResolved;
    if (!node->state.compare_exchange_strong(expected, NodeState::kRunning)) return;
    ASYNCFLOW_NOTIFY(node, on_task_started);
    BlockState* bs = node->block_state();
    bs->frame.engine = node->engine;
    bs->frame.workflow_id = std::make_shared<const std::string>(node->uid());
    bs->frame.block = node;
    bs->ctx.top = &bs->frame;
    node->start_body(bs->ctx);
    return;
  }
  NodeState expected = NodeState::kResolved;
  if (!node->state.compare_exchange_strong(expected, NodeState::kSubmitted,
                                           std::memory_order_seq_cst)) {
    return;
  }
  if (node->stop.load(std::memory_order_seq_cst)) {
    finish(node, bit(NodeState::kSubmitted), TaskState::kCanceled, canceled_error(node, ""));
    return;
  }
  ASYNCFLOW_NOTIFY(node, on_task_submitted);
  try {
    add_to_batch(node);
  } catch (...) {
    finish(node, bit(NodeState::kSubmitted), TaskState::kFailed, std::current_exception());
  }
}

void finish_block(Node* block) noexcept {
  BlockState* bs = block->block_state();
  TaskState to = TaskState::kDone;
  std::exception_ptr error;
  if (block->stop.load(std::memory_order_acquire)) {
    to = TaskState::kCanceled;
    error = canceled_error(block, "");
  } else if (bs->body_error) {
    to = TaskState::kFailed;
    error = bs->body_error;
  }
  finish(block, bit(NodeState::kRunning), to, error);
}

void member_finished(Node* block) noexcept {
  if (block->block_state()->outstanding.fetch_sub(1, std::memory_order_acq_rel) == 1)
    finish_block(block);
}

}  // namespace

DispatchGuard::DispatchGuard() noexcept {
  ++tl_dispatcher.depth;
}
DispatchGuard::~DispatchGuard() {
  if (tl_dispatcher.depth == 1) drain();
  --tl_dispatcher.depth;
}

void make_ready(Node* node) noexcept {
  NodeState expected = NodeState::kPending;
  if (!node->state.compare_exchange_strong(expected, NodeState::kResolved)) return;
  node->add_ref();
  enqueue(Job{node, {}, nullptr});
}

bool claim_finish(Node* node, std::uint32_t allowed_from, NodeState* was) noexcept {
  NodeState cur = node->state.load(std::memory_order_acquire);
  do {
    if ((bit(cur) & allowed_from) == 0 || cur == NodeState::kFinishing) return false;
  } while (
      !node->state.compare_exchange_weak(cur, NodeState::kFinishing, std::memory_order_acq_rel));
  if (was != nullptr) *was = cur;
  return true;
}

bool finish(Node* node, std::uint32_t allowed_from, TaskState to, std::exception_ptr error,
            const TaskUsage* usage) noexcept {
  NodeState was = NodeState::kPending;
  if (!claim_finish(node, allowed_from, &was)) return false;
  finish_claimed(node, to, std::move(error), {was == NodeState::kRunning, usage});
  return true;
}

void finish_claimed(Node* node, TaskState to, std::exception_ptr error,
                    FinishDetails details) noexcept {
  DispatchGuard guard;  // dependents made ready below start once this completion is done
  node->error = std::move(error);
  // Reported before the state is published: once a get() returns, the terminal event has
  // been emitted, so stopping telemetry right after it loses nothing.
  if (node->engine->has_observer()) [[unlikely]]
    notify_finished(node, to, details);
  node->state.store(static_cast<NodeState>(to), std::memory_order_release);

  // Fire waiters oldest first (dependents start in creation order).
  Waiter* list = node->waiters.exchange(kClosedWaiters, std::memory_order_acq_rel);
  Waiter* reversed = nullptr;
  while (list != nullptr) {
    Waiter* next = list->next;
    list->next = reversed;
    reversed = list;
    list = next;
  }
  while (reversed != nullptr) {
    Waiter* next = reversed->next;  // fire() may free the waiter
    reversed->fire();
    reversed = next;
  }

  // Drop what a finished task no longer needs: inputs and upstream references, so a long
  // chain does not keep every ancestor alive (memory target: issue #2).
  node->release_inputs();
  for (std::uint32_t i = 0; i < node->dep_count; ++i) {
    if (Node* dep = std::exchange(node->deps[i].dep, nullptr)) dep->release();
  }
  if (BlockState* bs = node->block_state()) {
    std::vector<NodeRef> members;
    {
      MutexLock lock(bs->mu);
      members.swap(bs->members);
    }
  }
  if (Node* owner = std::exchange(node->block, nullptr)) {
    member_finished(owner);
    owner->release();
  }
  node->engine->task_finished_accounting();
  node->release();  // the engine's reference
}

void engine_launch(EngineCore* core, Node* node, std::span<Node* const> deps) noexcept {
  DispatchGuard guard;
  node->engine = core;
  const bool is_block = node->kind() == TaskKind::kBlock;
  node->seq =
      (is_block ? core->block_seq : core->task_seq).fetch_add(1, std::memory_order_relaxed) + 1;

  const ScopeFrame* frame = find_frame(core);
  node->workflow_id = node->def->workflow_id ? node->def->workflow_id
                                             : (frame != nullptr ? frame->workflow_id : nullptr);
  Node* owner = frame != nullptr ? frame->block : nullptr;
  if (owner != nullptr) {
    owner->add_ref();
    node->block = owner;
    BlockState* bs = owner->block_state();
    bs->outstanding.fetch_add(1, std::memory_order_relaxed);
    MutexLock lock(bs->mu);
    bs->members.emplace_back(node);
  }

  node->dep_count = static_cast<std::uint32_t>(deps.size());
  node->join.store(static_cast<std::int32_t>(deps.size()) + 1, std::memory_order_relaxed);
  if (!deps.empty()) {
    node->deps = new Node::DepEdge[deps.size()];
    for (std::size_t i = 0; i < deps.size(); ++i) {
      node->deps[i].owner = node;
      node->deps[i].dep = deps[i];
      deps[i]->add_ref();
    }
  }

  if (core->has_observer()) [[unlikely]]
    notify_created(node, deps);

  for (std::size_t i = 0; i < deps.size(); ++i) {
    node->add_ref();  // held by the registered edge until it fires
    if (!deps[i]->add_waiter(&node->deps[i])) node->deps[i].fire();
  }
  if (node->join.fetch_sub(1, std::memory_order_acq_rel) == 1) make_ready(node);
  if (owner != nullptr && owner->stop.load(std::memory_order_acquire)) cancel(node);
}

bool cancel(Node* node) noexcept {
  if (node->finished()) return false;
  DispatchGuard guard;
  const bool first_request = !node->stop.exchange(true, std::memory_order_seq_cst);
  if (BlockState* bs = node->block_state()) {
    std::vector<NodeRef> members;
    {
      MutexLock lock(bs->mu);
      members = bs->members;
    }
    for (const NodeRef& m : members) cancel(m.get());
  }
  if (finish(node, bit(NodeState::kPending), TaskState::kCanceled, canceled_error(node, ""))) {
    return true;
  }
  NodeState s = node->state.load(std::memory_order_seq_cst);
  if (s == NodeState::kResolved) return true;  // start_node() sees the flag (see there)
  if (s == NodeState::kSubmitted || s == NodeState::kRunning) {
    // Route to the backend that owns the task (reference flaw §8.6: always the default one).
    // A running block has no backend: its members were canceled above.
    if (node->def->backend != nullptr) {
      EnginePin pin(node->engine);
      // Checked again under the pin: unfinished now, so shutdown() cannot have released the
      // backend, and it will not until the pin goes.
      if (!node->finished()) node->def->backend->cancel(*node);
    }
    return true;
  }
  // Finished meanwhile: possibly because of this very request (a cooperative task that saw
  // the stop flag), which still counts as a successful cancel.
  return first_request;
}

void run_task(Node* node, bool dry) noexcept {
  DispatchGuard guard;
  if (node->stop.load(std::memory_order_acquire) ||
      node->engine->shutting_down.load(std::memory_order_acquire)) {
    finish(node, bit(NodeState::kSubmitted), TaskState::kCanceled,
           canceled_error(node, node->stop.load() ? "" : " by engine shutdown before it started"));
    return;
  }
  NodeState expected = NodeState::kSubmitted;
  if (!node->state.compare_exchange_strong(expected, NodeState::kRunning)) return;
  ASYNCFLOW_NOTIFY(node, on_task_started);
  std::exception_ptr error;
  std::optional<TaskUsage> usage;
  if (dry) {
    if (!node->store_default_value()) {
      error = std::make_exception_ptr(Error("dry run: task '" + node->name() + "' (" + node->uid() +
                                            ") returns a type that cannot be value-initialized (" +
                                            node->value_type_name() + ")"));
    }
  } else {
    // Measured only for telemetry to see: up to two system calls, more than a no-op task costs.
    std::optional<detail::ThreadCallMeter> meter;
    if (node->engine->has_observer() && node->def->backend->measures_calls()) [[unlikely]] {
      meter.emplace();
    }
    Node* saved = std::exchange(tl_running_task, node);
    try {
      node->invoke();
    } catch (...) {
      error = std::current_exception();
    }
    tl_running_task = saved;
    if (meter) usage = meter->end();
  }
  const TaskUsage* used = usage ? &*usage : nullptr;
  if (node->stop.load(std::memory_order_acquire)) {
    finish(node, bit(NodeState::kRunning), TaskState::kCanceled,
           canceled_error(node, " while running"));
  } else if (error) {
    finish(node, bit(NodeState::kRunning), TaskState::kFailed, std::move(error), used);
  } else {
    finish(node, bit(NodeState::kRunning), TaskState::kDone, nullptr, used);
  }
}

bool report_task_started(Node* node) noexcept {
  DispatchGuard guard;
  if (node->stop.load(std::memory_order_acquire) ||
      node->engine->shutting_down.load(std::memory_order_acquire)) {
    finish(node, bit(NodeState::kSubmitted), TaskState::kCanceled,
           canceled_error(node, node->stop.load() ? "" : " by engine shutdown before it started"));
    return false;
  }
  NodeState expected = NodeState::kSubmitted;
  if (!node->state.compare_exchange_strong(expected, NodeState::kRunning)) return false;
  ASYNCFLOW_NOTIFY(node, on_task_started);
  return true;
}

void report_task_completed(Node* node, std::string output, const TaskUsage* usage) noexcept {
  DispatchGuard guard;
  // A backend that completes a task it never reported started: the start is reported now,
  // so the task ends (it would stay SUBMITTED, its get() and shutdown() waiting for ever).
  NodeState submitted = NodeState::kSubmitted;
  if (node->state.compare_exchange_strong(submitted, NodeState::kRunning)) {
    ASYNCFLOW_NOTIFY(node, on_task_started);
  }
  // Claimed before the output is stored: a second report must not replace the result of a
  // task that has finished (and may be read).
  if (!claim_finish(node, bit(NodeState::kRunning))) return;
  std::exception_ptr error;
  try {
    node->store_output(std::move(output));
  } catch (...) {
    error = std::current_exception();
  }
  finish_claimed(node, error ? TaskState::kFailed : TaskState::kDone, std::move(error),
                 {/*ran=*/true, usage});
}

void report_task_failed(Node* node, std::exception_ptr error, const TaskUsage* usage) noexcept {
  DispatchGuard guard;
  // Also before it started: a builder that threw, a program that could not be spawned.
  finish(node, bit(NodeState::kSubmitted) | bit(NodeState::kRunning), TaskState::kFailed,
         std::move(error), usage);
}

void report_task_canceled(Node* node, std::string_view how) noexcept {
  DispatchGuard guard;
  finish(node, bit(NodeState::kSubmitted) | bit(NodeState::kRunning), TaskState::kCanceled,
         canceled_error(node, std::string(how).c_str()));
}

void block_body_done(Node* block, std::exception_ptr error) noexcept {
  block->block_state()->body_error = std::move(error);
  member_finished(block);
}

void Node::DepEdge::fire() noexcept {
  Node* o = owner;
  if (o->join.fetch_sub(1, std::memory_order_acq_rel) == 1) make_ready(o);
  o->release();
}

void schedule_resume(std::coroutine_handle<> h, CoContext* ctx) noexcept {
  enqueue(Job{nullptr, h, ctx});
}

bool cancel_node(Node& node) noexcept {
  return cancel(&node);
}

void check_blocking_wait_allowed(const Node& node) {
  if (current_co_context() != nullptr) {
    throw Error("blocking wait on '" + node.name() + "' (" + node.uid() +
                ") inside a block body would hold a thread; use co_await instead");
  }
}

void throw_empty_handle(const char* member) {
  throw Error(std::string("TaskHandle::") + member +
              "() called on an empty handle (default-constructed or moved-from): it names no task");
}

Node* running_task() noexcept {
  return tl_running_task;
}

}  // namespace asyncflow::detail

namespace asyncflow::this_task {

bool stop_requested() noexcept {
  detail::Node* n = detail::running_task();
  return n != nullptr && n->stop.load(std::memory_order_acquire);
}

std::string uid() {
  detail::Node* n = detail::running_task();
  return n != nullptr ? n->uid() : std::string();
}

}  // namespace asyncflow::this_task
