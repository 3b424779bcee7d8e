// WorkflowEngine lifecycle: creation (backends, uid, work dir), routing lookup, shutdown.
#include "asyncflow/core/engine.hpp"

#include <system_error>
#include <unordered_set>

#include "asyncflow/backend/noop_backend.hpp"
#include "asyncflow/backend/thread_pool_backend.hpp"
#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/manager.hpp"
#include "common/random.hpp"
#include "engine_core.hpp"
#include "observer_pair.hpp"
#include "scheduler.hpp"
#include "telemetry_bridge.hpp"

namespace asyncflow {
namespace detail {

Backend* EngineCore::find_backend(std::string_view name) const noexcept {
  if (name.empty()) return backends.empty() ? nullptr : backends.front().get();
  for (const auto& b : backends) {
    if (b->name() == name) return b.get();
  }
  return nullptr;
}

void EngineCore::install_observers() {
  std::shared_ptr<EngineObserver> both;
  if (telemetry_observer && user_observer) {
    both = std::make_shared<ObserverPair>(telemetry_observer, user_observer);
  } else {
    both = telemetry_observer ? telemetry_observer : user_observer;
  }
  observer.store(both.get(), std::memory_order_release);
  // Kept until the engine is destroyed: a thread may still be inside an observer replaced now.
  if (both) observers_kept.push_back(std::move(both));
}

void EngineCore::task_finished_accounting() noexcept {
  // Not the last: a lock-free decrement, and this engine is not touched again.
  std::int64_t n = live.load(std::memory_order_relaxed);
  while (n > 1) {
    if (live.compare_exchange_weak(n, n - 1, std::memory_order_acq_rel)) return;
  }
  // Possibly the last: decrement under idle_mu, so shutdown() (which checks under the same
  // mutex) cannot free the engine while this thread still uses it.
  MutexLock lock(idle_mu);
  live.fetch_sub(1, std::memory_order_acq_rel);
  idle_cv.notify_all();
}

void engine_begin_create(EngineCore* core) {
  // Count first, then check: shutdown() sets the flag, then waits for `live` to reach zero,
  // so either we see the flag or shutdown sees our count (both seq_cst).
  core->live.fetch_add(1, std::memory_order_seq_cst);
  if (core->shutting_down.load(std::memory_order_seq_cst)) {
    core->task_finished_accounting();
    throw EngineShutdownError("engine '" + core->uid +
                              "' has been shut down; it accepts no new tasks");
  }
}

void engine_abort_create(EngineCore* core) noexcept {
  core->task_finished_accounting();
}

Backend* engine_backend(const EngineCore* core, std::string_view name) {
  MutexLock lock(core->backends_mu);
  if (core->backends.empty()) {
    throw EngineShutdownError("engine '" + core->uid + "' has been shut down");
  }
  if (Backend* b = core->find_backend(name)) return b;
  std::string known;
  for (const auto& b : core->backends) known += (known.empty() ? "" : ", ") + b->name();
  throw Error("unknown backend '" + std::string(name) + "'; engine '" + core->uid +
              "' has: " + known);
}

Backend* engine_function_backend(const EngineCore* core, std::string_view name,
                                 std::string_view task_name, bool registered) {
  Backend* b = engine_backend(core, name);
  if (!registered && !b->runs_closures()) {
    throw Error("function task '" + std::string(task_name) + "': backend '" + b->name() +
                "' runs work in other processes and cannot call an in-process function; "
                "register it (asyncflow::register_function) to run it there, or route it to a "
                "thread pool");
  }
  return b;
}

}  // namespace detail

namespace {

std::vector<std::shared_ptr<Backend>> choose_backends(EngineOptions& options) {
  std::vector<std::shared_ptr<Backend>> chosen;
  if (options.backends.empty()) {
    // A dry run mirrors the default engine (same backend name), so routing is checked alike.
    auto pool_name = ThreadPoolOptions{}.name;
    if (options.dry_run) {
      chosen.push_back(NoopBackend::create(pool_name, /*runs_executables=*/false));
    } else {
      chosen.push_back(ThreadPoolBackend::create({.name = pool_name}));
    }
    return chosen;
  }
  std::unordered_set<std::string> names;
  for (std::size_t i = 0; i < options.backends.size(); ++i) {
    const auto& b = options.backends[i];
    if (!b) throw Error("EngineOptions::backends[" + std::to_string(i) + "] is null");
    if (!names.insert(b->name()).second) {
      throw Error("duplicate backend name '" + b->name() +
                  "': backend names must be unique within an engine");
    }
    chosen.push_back(options.dry_run ? NoopBackend::create(b->name(), b->runs_executables()) : b);
  }
  return chosen;
}

/// A uid is one directory name: "../x" or "a/b" would put the engine's files elsewhere.
void check_uid(const std::string& uid) {
  const bool bad = uid == "." || uid == ".." || uid.size() > 255 ||
                   uid.find_first_of(std::string_view("/\0", 2)) != std::string::npos;
  if (bad) {
    std::string shown;
    for (char c : uid) c == '\0' ? shown += "\\0" : shown += c;
    throw Error("EngineOptions::uid '" + shown +
                "' is not a plain name: it names the engine's directory inside work_dir, so "
                "it may not contain '/' or NUL, be \".\" or \"..\", or exceed 255 bytes");
  }
}

}  // namespace

namespace detail {

const std::string& EngineCore::make_work_dir() noexcept {
  std::call_once(work_dir_made, [this] {
    if (!work_dir_error.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(work_dir, ec);
    if (ec) {
      work_dir_error = ec.message();
      return;
    }
    // A symbolic link planted in its place would send task output elsewhere.
    const auto status = std::filesystem::symlink_status(work_dir, ec);
    if (ec) {
      work_dir_error = ec.message();
    } else if (status.type() != std::filesystem::file_type::directory) {
      work_dir_error = "something other than a directory is in its place (a symbolic link?)";
    }
  });
  return work_dir_error;
}

}  // namespace detail

WorkflowEngine::WorkflowEngine(EngineOptions options)
    : core_(std::make_shared<detail::EngineCore>()) {
  core_->backends = choose_backends(options);
  if (!options.uid.empty()) check_uid(options.uid);
  core_->uid = options.uid.empty() ? "asyncflow.session." + detail::random_hex8() : options.uid;
  std::filesystem::path base = options.work_dir;
  if (base.empty()) {
    std::error_code ec;
    base = std::filesystem::current_path(ec);
    if (ec) {  // deleted, say: only work that needs the directory fails, saying so
      core_->work_dir_error = "the current directory cannot be read (" + ec.message() +
                              "), and EngineOptions::work_dir was not given";
    }
  }
  core_->work_dir = base / core_->uid;
}

std::unique_ptr<WorkflowEngine> WorkflowEngine::create(EngineOptions options) {
  return std::unique_ptr<WorkflowEngine>(new WorkflowEngine(std::move(options)));
}

WorkflowEngine::~WorkflowEngine() {
  shutdown();
}

const std::string& WorkflowEngine::uid() const noexcept {
  return core_->uid;
}
const std::filesystem::path& WorkflowEngine::work_dir() const {
  if (const std::string& error = core_->make_work_dir(); !error.empty()) {
    throw Error("engine '" + core_->uid + "': cannot make its work dir '" +
                core_->work_dir.string() + "': " + error);
  }
  return core_->work_dir;
}

Backend& WorkflowEngine::backend(std::string_view name) const {
  return *detail::engine_backend(core_.get(), name);
}

std::vector<std::string> WorkflowEngine::backend_names() const {
  std::vector<std::string> names;
  MutexLock lock(core_->backends_mu);
  for (const auto& b : core_->backends) names.push_back(b->name());
  return names;
}

void WorkflowEngine::set_observer(std::shared_ptr<EngineObserver> observer) {
  MutexLock lock(core_->observers_mu);
  core_->user_observer = std::move(observer);
  core_->install_observers();
}

bool WorkflowEngine::shutdown() {
  std::shared_ptr<TelemetryManager> running_telemetry;
  {
    MutexLock telemetry_lock(core_->telemetry_mu);
    running_telemetry = core_->telemetry;
  }
  if (running_telemetry && running_telemetry->on_telemetry_thread()) {
    throw Error("WorkflowEngine::shutdown() called from a telemetry subscriber of engine '" +
                core_->uid +
                "': shutdown stops telemetry, which waits for its subscribers; "
                "shut the engine down from another thread");
  }
  // shutdown() waits for every running task: called from one of them it would wait for
  // itself forever. Refused, as std::thread::join() on the calling thread is.
  if (const detail::Node* n = detail::running_task(); n != nullptr && n->engine == core_.get()) {
    throw Error("WorkflowEngine::shutdown() called from inside task '" + n->name() + "' (" +
                n->uid() + ") of engine '" + core_->uid +
                "': shutdown waits for every running task, this one too; shut the engine down "
                "from outside its tasks");
  }
  if (detail::current_co_context() != nullptr) {
    if (const detail::ScopeFrame* f = detail::find_frame(core_.get());
        f != nullptr && f->block != nullptr) {
      throw Error("WorkflowEngine::shutdown() called from inside block '" + f->block->name() +
                  "' (" + f->block->uid() + ") of engine '" + core_->uid +
                  "': shutdown waits for every running block, this one too; shut the engine "
                  "down from outside its tasks");
    }
  }
  MutexLock lock(core_->shutdown_mu);
  if (core_->shutdown_done) return core_->shutdown_result;
  core_->shutting_down.store(true, std::memory_order_seq_cst);
  // From here: creation throws, a task that becomes ready is canceled instead of submitted, a
  // queued task is canceled when a worker reaches it, running functions finish normally,
  // running programs are stopped (their backend kills their process groups), block bodies see
  // their canceled children and return. Wait for all of that to settle.
  {
    std::vector<std::shared_ptr<Backend>> backends;
    {
      MutexLock backends_lock(core_->backends_mu);
      backends = core_->backends;
    }
    for (const auto& b : backends) b->stop_tasks_of(core_.get());
  }
  {
    MutexLock idle(core_->idle_mu);
    core_->idle_cv.wait(core_->idle_mu,
                        [this] { return core_->live.load(std::memory_order_acquire) == 0; });
  }
  // Every task has ended, so every lifecycle event has been emitted: end the session.
  std::shared_ptr<TelemetryManager> telemetry;
  {
    MutexLock telemetry_lock(core_->telemetry_mu);
    telemetry = core_->telemetry;
  }
  bool kept_everything = true;
  if (telemetry) kept_everything = telemetry->stop();
  // Releasing our references stops backends nobody else owns (their destructors join).
  std::vector<std::shared_ptr<Backend>> backends;
  {
    MutexLock backends_lock(core_->backends_mu);
    backends.swap(core_->backends);
  }
  backends.clear();
  std::vector<detail::NodeRef> refused;  // no backend is left to run them
  {
    MutexLock refused_lock(core_->refused_mu);
    refused.swap(core_->refused);
  }
  refused.clear();
  core_->shutdown_done = true;
  core_->shutdown_result = kept_everything;
  return kept_everything;
}

std::shared_ptr<TelemetryManager> WorkflowEngine::start_telemetry(TelemetryOptions options) {
  MutexLock shutdown_lock(core_->shutdown_mu);
  if (core_->shutting_down.load(std::memory_order_acquire)) {
    throw EngineShutdownError("engine '" + core_->uid +
                              "' has been shut down; telemetry cannot start");
  }
  MutexLock lock(core_->telemetry_mu);
  if (core_->telemetry) {
    throw Error("telemetry is already started on engine '" + core_->uid +
                "' (one session per engine); use engine.telemetry()");
  }
  // What a custom event emitted in this engine's task or scope is about (task-local, as the
  // scope): compared by address only, so it is safe even after the engine is gone.
  const detail::EngineCore* core = core_.get();
  auto emit_context = [core]() -> EmitContext {
    EmitContext c;
    if (const detail::Node* n = detail::running_task(); n != nullptr && n->engine == core) {
      c.task_id = n->uid();
      if (n->workflow_id) c.workflow_id = *n->workflow_id;
      return c;
    }
    if (const detail::ScopeFrame* f = detail::find_frame(core); f != nullptr && f->workflow_id)
      c.workflow_id = *f->workflow_id;
    return c;
  };
  auto manager = TelemetryManager::start(core_->uid, std::move(options), std::move(emit_context));
  core_->telemetry = manager;
  MutexLock observers_lock(core_->observers_mu);
  core_->telemetry_observer = std::make_shared<detail::TelemetryBridge>(manager);
  core_->install_observers();
  return manager;
}

std::shared_ptr<TelemetryManager> WorkflowEngine::telemetry() const {
  MutexLock lock(core_->telemetry_mu);
  if (!core_->telemetry) {
    throw Error("Telemetry not started. Call engine.start_telemetry() first.");
  }
  return core_->telemetry;
}

bool WorkflowEngine::is_shut_down() const noexcept {
  return core_->shutting_down.load(std::memory_order_acquire);
}

std::size_t WorkflowEngine::active_tasks() const noexcept {
  auto n = core_->live.load(std::memory_order_acquire);
  return n < 0 ? 0 : static_cast<std::size_t>(n);
}

}  // namespace asyncflow
