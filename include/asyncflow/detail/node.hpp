// Internal: the graph node behind every TaskHandle, and the waiter list that wakes dependents,
// coroutines and blocking waiters when it finishes. Not part of the public API.
//
// Thread safety (invariants):
//  1. `state` only moves forward; the one transition into a terminal state is claimed by a CAS
//     into kFinishing, so exactly one thread writes the outcome (value or error).
//  2. The outcome is written before `state` is stored with release; readers that load a
//     terminal state with acquire may read it without a lock.
//  3. `waiters` is a push-only Treiber stack closed once by exchange(kClosed) at completion, so
//     there is no ABA; a push that finds kClosed means "already finished: act now".
//  4. The engine holds one reference on every unfinished node (dropped after completion), each
//     registered dependency edge holds one on its owner, handles hold one each.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "asyncflow/backend/backend.hpp"
#include "asyncflow/core/task_state.hpp"

namespace asyncflow::detail {

class EngineCore;
struct CoContext;
struct BlockState;

/// Something to run once when a node finishes. Fired exactly once, on the finishing thread.
struct Waiter {
  Waiter* next = nullptr;
  virtual void fire() noexcept = 0;

 protected:
  ~Waiter() = default;
};

/// What a task factory defines once and every call shares: name, kind, routing, description.
struct Definition {
  std::string name;
  TaskKind kind = TaskKind::kFunction;
  Backend* backend = nullptr;  // owning backend; null for blocks
  TaskDescription description;
  std::shared_ptr<const std::string> workflow_id;  // call-time override; null = use scope
  bool registered = false;  // a registered function: may run in a worker process
  virtual ~Definition() = default;
};

/// Internal lifecycle states: the public ones plus the transient claim kFinishing.
enum class NodeState : std::uint8_t {
  kPending = static_cast<std::uint8_t>(TaskState::kPending),
  kResolved = static_cast<std::uint8_t>(TaskState::kResolved),
  kSubmitted = static_cast<std::uint8_t>(TaskState::kSubmitted),
  kRunning = static_cast<std::uint8_t>(TaskState::kRunning),
  kDone = static_cast<std::uint8_t>(TaskState::kDone),
  kFailed = static_cast<std::uint8_t>(TaskState::kFailed),
  kCanceled = static_cast<std::uint8_t>(TaskState::kCanceled),
  kFinishing = 100,  // outcome being written; reported as the previous live state
};

/// Room for any uid write_uid() writes ("block." and the 20 digits of 2^64).
inline constexpr std::size_t kUidCapacity = 32;
/// Writes a node's uid to `out`, which holds at least kUidCapacity characters: "task." or
/// "block." and n zero-padded to at least 6 digits ("task.000042"). Returns the length.
std::size_t write_uid(char* out, bool block, std::uint64_t n) noexcept;

class Node : public BackendTask {
 public:
  // --- BackendTask ---
  std::string uid() const override;
  const std::string& name() const noexcept override { return def->name; }
  TaskKind kind() const noexcept override { return def->kind; }
  const TaskDescription& description() const noexcept override { return def->description; }
  const std::filesystem::path& work_dir() const noexcept override;
  bool stop_requested() const noexcept override { return stop.load(std::memory_order_acquire); }
  void run() noexcept override;
  void run_dry() noexcept override;
  void report_queued() noexcept override;
  Command command() override;
  std::string function_request() override;
  std::vector<std::pair<std::string, std::string>> context_env() const override;
  bool report_started() noexcept override;
  void report_completed(std::string output, const TaskUsage* usage = nullptr) noexcept override;
  void report_failed(std::exception_ptr failure,
                     const TaskUsage* usage = nullptr) noexcept override;
  void report_canceled(std::string_view how) noexcept override;
  const void* owner() const noexcept override { return engine; }

  // --- engine side ---
  TaskState public_state() const noexcept;
  bool finished() const noexcept {
    auto s = state.load(std::memory_order_acquire);
    return s >= NodeState::kDone && s != NodeState::kFinishing;
  }
  /// Registers `w` to fire at completion. Returns false (and does not register) when the node
  /// has already finished: the caller acts at once.
  bool add_waiter(Waiter* w) noexcept;
  /// Blocks until finished (or `timeout_ns` elapses when >= 0). Returns finished().
  bool wait(std::int64_t timeout_ns = -1) const;

  void add_ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Typed hooks implemented by the templates.
  /// Runs the body with resolved arguments and stores its value. May throw.
  virtual void invoke() = 0;
  /// Dry run: stores a value-initialized value. False when the type cannot be built.
  virtual bool store_default_value() noexcept = 0;
  /// Drops arguments (and with them the references to dependencies) once finished.
  virtual void release_inputs() noexcept = 0;
  /// Blocks only: starts the body coroutine in `ctx`.
  virtual void start_body(CoContext& ctx) noexcept;
  /// Blocks only: members and completion accounting; null for tasks.
  virtual BlockState* block_state() noexcept { return nullptr; }
  /// Executable tasks: calls the builder with the resolved arguments. Others throw Error.
  virtual Command build_command();
  /// Registered function tasks: the JSON call line. Others throw Error.
  virtual std::string build_function_request();
  /// Stores an out-of-process result (an executable's output). Throws Error for task types
  /// that have no such result.
  virtual void store_output(std::string output);
  /// Name of the result type, for error messages.
  virtual const char* value_type_name() const noexcept = 0;

  // --- fields (detail: accessed by the engine and the templates) ---
  // Packed so that a node of a small result type fits a 128-byte malloc chunk (bench:
  // BM_RetainedBytesPerTask).
  std::atomic<std::uint32_t> refs{1};
  std::atomic<std::int32_t> join{1};  // unfinished dependencies + 1 creation guard
  std::atomic<NodeState> state{NodeState::kPending};
  std::atomic<bool> stop{false};
  std::uint32_t dep_count = 0;
  std::atomic<Waiter*> waiters{nullptr};
  EngineCore* engine = nullptr;
  std::shared_ptr<const Definition> def;
  std::uint64_t seq = 0;                           // the number in the uid
  std::shared_ptr<const std::string> workflow_id;  // scope / block uid; may be null
  Node* block = nullptr;                           // owning block (referenced) or null
  std::exception_ptr error;                        // set when failed or canceled
  struct DepEdge;
  DepEdge* deps = nullptr;  // array of `dep_count` edges

  ~Node() override;

 protected:
  Node() = default;
};

/// The edge from a dependency to its dependent, kept in the dependent's `deps` array.
struct Node::DepEdge final : Waiter {
  Node* owner = nullptr;  // the dependent (a reference is held while registered)
  Node* dep = nullptr;    // the dependency (referenced)
  void fire() noexcept override;
};

/// Intrusive reference to a Node.
class NodeRef {
 public:
  NodeRef() = default;
  /// Adopts one existing reference.
  static NodeRef adopt(Node* n) noexcept {
    NodeRef r;
    r.p_ = n;
    return r;
  }
  explicit NodeRef(Node* n) noexcept : p_(n) {
    if (p_) p_->add_ref();
  }
  NodeRef(const NodeRef& o) noexcept : p_(o.p_) {
    if (p_) p_->add_ref();
  }
  NodeRef(NodeRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  NodeRef& operator=(NodeRef o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~NodeRef() {
    if (p_) p_->release();
  }
  Node* get() const noexcept { return p_; }
  Node* operator->() const noexcept { return p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  friend bool operator==(const NodeRef& a, const NodeRef& b) noexcept { return a.p_ == b.p_; }

 private:
  Node* p_ = nullptr;
};

/// A node whose body produces a T (or nothing for void).
template <class T>
class ValueNode : public Node {
 public:
  const T& value() const noexcept { return *value_; }
  bool store_default_value() noexcept override {
    if constexpr (std::is_default_constructible_v<T>) {
      try {
        value_.emplace();
        return true;
      } catch (...) {
        return false;
      }
    } else {
      return false;
    }
  }
  const char* value_type_name() const noexcept override { return typeid(T).name(); }

 protected:
  std::optional<T> value_;
};

template <>
class ValueNode<void> : public Node {
 public:
  bool store_default_value() noexcept override { return true; }
  const char* value_type_name() const noexcept override { return "void"; }
};

}  // namespace asyncflow::detail
