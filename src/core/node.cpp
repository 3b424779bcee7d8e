// Node: identity, waiter list and blocking waits.
#include "asyncflow/detail/node.hpp"

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string_view>
#include <thread>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/core/errors.hpp"
#include "common/decimal.hpp"
#include "common/spin_wait.hpp"
#include "engine_core.hpp"
#include "scheduler.hpp"

namespace asyncflow::detail {

namespace {

/// A waiter for a blocked thread. Shared by the waiting thread and the node (two references)
/// so that a timed-out waiter can leave while the node still holds it.
struct BlockingWaiter final : Waiter {
  Mutex mu;
  CondVar cv;
  bool fired ASYNCFLOW_GUARDED_BY(mu) = false;
  std::atomic<int> refs{2};

  void fire() noexcept override {
    {
      MutexLock lock(mu);
      fired = true;
    }
    cv.notify_all();
    release();
  }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

constexpr int kWaitPauseRounds = 64;
constexpr int kWaitYieldRounds = 32;

}  // namespace

// Written into the caller's buffer, digits two per table lookup: the engine writes a uid for
// every lifecycle point it reports (appending a character at a time to a std::string cost
// about 350 instructions per uid, callgrind).
std::size_t write_uid(char* out, bool block, std::uint64_t n) noexcept {
  const std::string_view prefix = block ? std::string_view("block.") : std::string_view("task.");
  std::memcpy(out, prefix.data(), prefix.size());
  int len = 6;  // zero-padded to at least 6 digits
  for (std::uint64_t rest = n / 1000000; rest != 0; rest /= 10) ++len;
  write_digits(out + prefix.size(), n, len);
  return prefix.size() + static_cast<std::size_t>(len);
}

Node::~Node() {
  delete[] deps;
}

std::string Node::uid() const {
  char buf[kUidCapacity];
  return std::string(buf, write_uid(buf, kind() == TaskKind::kBlock, seq));
}

const std::filesystem::path& Node::work_dir() const noexcept {
  engine->make_work_dir();  // files made in it then fail naming why, when it cannot be made
  return engine->work_dir;
}

void Node::run() noexcept {
  run_task(this, /*dry=*/false);
}
void Node::run_dry() noexcept {
  run_task(this, /*dry=*/true);
}

void Node::report_queued() noexcept {
  if (EngineObserver* obs = engine->obs()) obs->on_task_queued(NodeInfo(*this).info);
}

std::vector<std::pair<std::string, std::string>> Node::context_env() const {
  std::vector<std::pair<std::string, std::string>> env;
  if (EngineObserver* obs = engine->obs()) obs->add_trace_context(uid(), env);
  return env;
}

Command Node::command() {
  return build_command();
}
std::string Node::function_request() {
  return build_function_request();
}
bool Node::report_started() noexcept {
  return report_task_started(this);
}
void Node::report_completed(std::string output, const TaskUsage* usage) noexcept {
  report_task_completed(this, std::move(output), usage);
}
void Node::report_failed(std::exception_ptr failure, const TaskUsage* usage) noexcept {
  report_task_failed(this, std::move(failure), usage);
}
void Node::report_canceled(std::string_view how) noexcept {
  report_task_canceled(this, how);
}

Command Node::build_command() {
  throw Error("task '" + name() + "' (" + uid() + ") is not an executable task: it has no command");
}
std::string Node::build_function_request() {
  throw Error("task '" + name() + "' (" + uid() +
              ") is not a registered function: it cannot run "
              "in another process (see asyncflow::register_function)");
}
void Node::store_output(std::string) {
  throw Error("task '" + name() + "' (" + uid() + ") cannot take a process output as its result");
}

void Node::start_body(CoContext&) noexcept {}

TaskState Node::public_state() const noexcept {
  NodeState s = state.load(std::memory_order_acquire);
  while (s == NodeState::kFinishing) {  // lasts two stores; see finish()
    std::this_thread::yield();
    s = state.load(std::memory_order_acquire);
  }
  return static_cast<TaskState>(s);
}

bool Node::add_waiter(Waiter* w) noexcept {
  Waiter* head = waiters.load(std::memory_order_acquire);
  do {
    if (head == kClosedWaiters) return false;
    w->next = head;
  } while (!waiters.compare_exchange_weak(head, w, std::memory_order_acq_rel,
                                          std::memory_order_acquire));
  return true;
}

bool Node::wait(std::int64_t timeout_ns) const {
  if (finished()) return true;
  // Tasks are often moments from done when someone waits for them (a get() loop over the
  // handles of a fan-out): a short poll avoids a futex sleep and wake-up per handle.
  if (timeout_ns != 0 &&
      spin_until([this] { return finished(); }, kWaitPauseRounds, kWaitYieldRounds)) {
    return true;
  }
  auto* w = new BlockingWaiter;
  if (!const_cast<Node*>(this)->add_waiter(w)) {
    delete w;
    return true;
  }
  {
    MutexLock lock(w->mu);
    if (timeout_ns < 0) {
      w->cv.wait(w->mu, [w]() ASYNCFLOW_REQUIRES(w->mu) { return w->fired; });
    } else {
      w->cv.wait_for(w->mu, std::chrono::nanoseconds(timeout_ns),
                     [w]() ASYNCFLOW_REQUIRES(w->mu) { return w->fired; });
    }
  }
  // The waiter list fires before the node is complete in every respect but the state, which
  // is already terminal by then; finished() is therefore accurate here.
  bool done = finished();
  w->release();
  return done;
}

NodeInfo::NodeInfo(const Node& node) noexcept
    : info{{uid_, write_uid(uid_, node.kind() == TaskKind::kBlock, node.seq)},
           node.name(),
           node.kind(),
           {},
           {},
           {}} {
  if (node.def->backend != nullptr) info.backend = node.def->backend->name();
  if (node.workflow_id) info.workflow_id = *node.workflow_id;
  if (node.block != nullptr) {
    info.parent_block = {parent_uid_, write_uid(parent_uid_, /*block=*/true, node.block->seq)};
  }
}

}  // namespace asyncflow::detail
