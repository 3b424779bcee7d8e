// Workflow scopes and task-local context (see detail/context.hpp for the model).
#include "asyncflow/core/engine.hpp"
#include "common/random.hpp"
#include "engine_core.hpp"

namespace asyncflow {
namespace detail {

namespace {
thread_local ScopeFrame* tl_scope_top = nullptr;
thread_local CoContext* tl_co_context = nullptr;

const ScopeFrame* find_in(const ScopeFrame* f, const EngineCore* engine) noexcept {
  for (; f != nullptr; f = f->prev) {
    if (f->engine == engine) return f;
  }
  return nullptr;
}
}  // namespace

ScopeFrame*& thread_scope_top() noexcept {
  return tl_scope_top;
}
CoContext*& current_co_context() noexcept {
  return tl_co_context;
}

const ScopeFrame* find_frame(const EngineCore* engine) noexcept {
  if (tl_co_context != nullptr) {
    if (const ScopeFrame* f = find_in(tl_co_context->top, engine)) return f;
  }
  return find_in(tl_scope_top, engine);
}

}  // namespace detail

WorkflowScope::WorkflowScope(std::shared_ptr<detail::EngineCore> core, std::string id)
    : core_(std::move(core)), owner_(detail::current_co_context()) {
  if (id.empty()) id = "wf-" + detail::random_hex8();
  frame_.engine = core_.get();
  frame_.workflow_id = std::make_shared<const std::string>(std::move(id));
  // A scope inside a block keeps block membership (reference flaw: it used to be lost).
  const detail::ScopeFrame* enclosing = detail::find_frame(core_.get());
  frame_.block = enclosing != nullptr ? enclosing->block : nullptr;
  detail::ScopeFrame*& top = owner_ != nullptr ? owner_->top : detail::thread_scope_top();
  frame_.prev = top;
  top = &frame_;
  if (auto* obs = core_->obs()) {
    const std::string* parent =
        enclosing != nullptr && enclosing->workflow_id ? enclosing->workflow_id.get() : nullptr;
    obs->on_workflow_begin(*frame_.workflow_id, parent != nullptr ? *parent : std::string_view());
  }
}

WorkflowScope::~WorkflowScope() {
  detail::ScopeFrame*& top = owner_ != nullptr ? owner_->top : detail::thread_scope_top();
  if (top == &frame_) {
    top = frame_.prev;
  } else {  // destroyed out of order: unlink anyway so the stack stays valid
    for (detail::ScopeFrame* f = top; f != nullptr; f = f->prev) {
      if (f->prev == &frame_) {
        f->prev = frame_.prev;
        break;
      }
    }
  }
  // After shutdown the session has ended (its open workflows were closed with it): a scope
  // that outlived its engine reports nothing.
  if (core_->shutting_down.load(std::memory_order_acquire)) return;
  if (auto* obs = core_->obs()) obs->on_workflow_end(*frame_.workflow_id);
}

WorkflowScope WorkflowEngine::workflow_scope(std::string id) {
  return WorkflowScope(core_, std::move(id));
}

}  // namespace asyncflow
