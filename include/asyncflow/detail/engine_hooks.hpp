// Internal: the engine entry points that the task-factory templates call. The engine itself
// (EngineCore) is defined in src/; templates see it only through these functions.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "asyncflow/detail/context.hpp"
#include "asyncflow/detail/node.hpp"

namespace asyncflow::detail {

class EngineCore;

/// Reserves a slot for a new task. Throws EngineShutdownError after shutdown().
void engine_begin_create(EngineCore* core);
/// Releases the slot of a task whose construction threw.
void engine_abort_create(EngineCore* core) noexcept;
/// Wires a new node into the graph: uid, scope stamps, block membership, dependency edges,
/// observer events, readiness. The node must hold the engine's reference plus the caller's.
void engine_launch(EngineCore* core, Node* node, std::span<Node* const> deps) noexcept;
/// The backend named `name` (empty: the default). Throws asyncflow::Error when unknown.
Backend* engine_backend(const EngineCore* core, std::string_view name);

/// The backend for function tasks named `task_name` (engine_backend); an in-process closure
/// (not `registered`) cannot go to a backend that does not run closures. Throws asyncflow::Error.
Backend* engine_function_backend(const EngineCore* core, std::string_view name,
                                 std::string_view task_name, bool registered);
/// The backend for executable tasks named `task_name`: the one named `name`, which must run
/// executables; with `name` empty, the default backend if it does, else the first that does.
/// Throws asyncflow::Error naming the task and the fix.
Backend* engine_executable_backend(const EngineCore* core, std::string_view name,
                                   std::string_view task_name);

/// Throws asyncflow::Error naming `task_name` for a description no backend can honour: a
/// negative timeout, fewer than one core or rank, negative GPUs.
void check_task_description(const TaskDescription& d, std::string_view task_name);

/// An executable task's command from what its builder returned (argv, or a shell line that
/// needs TaskDescription::shell). Throws asyncflow::Error naming `node` when it is unusable.
Command make_command(std::vector<std::string> argv, const Node& node);
Command make_command(std::string line, const Node& node);
inline Command make_command(const char* line, const Node& node) {
  return make_command(std::string(line), node);
}
Command make_command(Command command, const Node& node);
/// An executable task reached an in-process backend's run(): a routing bug.
[[noreturn]] void executable_run_in_process(const Node& node);

/// A block's body finished (error null on success).
void block_body_done(Node* block, std::exception_ptr error) noexcept;

/// Gathers the distinct dependency nodes of one call, in first-appearance order.
class DepCollector {
 public:
  DepCollector() = default;
  DepCollector(const DepCollector&) = delete;
  DepCollector& operator=(const DepCollector&) = delete;
  ~DepCollector();
  void operator()(Node* n);
  std::span<Node* const> nodes() const noexcept { return {data(), size_}; }

 private:
  Node** data() noexcept { return heap_ != nullptr ? heap_ : inline_; }
  Node* const* data() const noexcept { return heap_ != nullptr ? heap_ : inline_; }
  static constexpr std::size_t kInline = 8;
  Node* inline_[kInline];
  Node** heap_ = nullptr;
  std::size_t size_ = 0;
  std::size_t cap_ = kInline;
  struct Seen;
  Seen* seen_ = nullptr;  // owned hash set, only for large fan-ins
};

}  // namespace asyncflow::detail
