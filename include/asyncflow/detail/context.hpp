// Internal: task-local context (which workflow scope / block is current) and the per-thread
// trampoline that resumes coroutines. Not part of the public API.
//
// A thread that is not running a coroutine keeps its scopes on a thread-local frame stack. A
// coroutine chain (a block body and the Task<T>s it awaits) keeps its own stack in a CoContext;
// whoever resumes the chain installs that CoContext for the duration of the resume, so scopes
// follow the coroutine across threads and suspensions (task-local, like a ContextVar).
#pragma once

#include <coroutine>
#include <memory>
#include <string>

namespace asyncflow::detail {

class EngineCore;
class Node;

struct ScopeFrame {
  const EngineCore* engine = nullptr;
  std::shared_ptr<const std::string> workflow_id;  // stamped on tasks created under the frame
  Node* block = nullptr;                           // block whose members those tasks become
  ScopeFrame* prev = nullptr;
};

/// The scope stack of one coroutine chain.
struct CoContext {
  ScopeFrame* top = nullptr;
};

/// Top of the calling thread's own frame stack (used outside coroutines).
ScopeFrame*& thread_scope_top() noexcept;
/// The coroutine context being resumed on this thread, or null.
CoContext*& current_co_context() noexcept;
/// Innermost frame of `engine` visible here: the running coroutine's first, then the thread's.
const ScopeFrame* find_frame(const EngineCore* engine) noexcept;

/// Resumes `h` with `ctx` installed. When called while this thread is already dispatching
/// (inside a completion, a submission or another resume), the resume is queued and runs when
/// the current step returns, so completions never recurse.
void schedule_resume(std::coroutine_handle<> h, CoContext* ctx) noexcept;

}  // namespace asyncflow::detail
