// ProcessBackend: a slot-limited FIFO of executable tasks, posix_spawn, one reaper thread that
// waits on the children's pidfds and on the nearest timeout or kill deadline, and a few starter
// threads that spawn the tasks holding a slot. A spawn blocks its thread until the child has
// exec'd, so spawning is kept off the reaper (reaping goes on meanwhile), and several starters
// let the exec work of several children run on several cores at once.
//
// Invariants (all under mu_):
//  1. A task holds a slot (an entry in children_) from the moment it is taken off the queue
//     until its child has been reaped (or its start failed); children_.size() <= max_.
//  2. A slot is registered before the task is marked started, so a cancel (or an engine
//     shutdown) either stops the task in report_started() or finds its entry here and marks
//     it stopped; a starter kills a child whose entry is marked stopped right after spawning.
//  3. A child is reaped by the reaper, or (kThread memory groups: one child per starter) by
//     the starter that spawned it, never both. reap() waits with WNOWAIT, kills what is left
//     of the process group while the zombie still holds the group id (so the id cannot have
//     been reused), then reaps. Deadlines are fired by the reaper for every child.
#include "asyncflow/backend/process_backend.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "asyncflow/backend/errors.hpp"
#include "asyncflow/common/thread_annotations.hpp"
#include "fd_waiter.hpp"
#include "function_workers.hpp"
#include "process_output.hpp"
#include "process_util.hpp"
#include "spawn.hpp"
#include "task_usage_meter.hpp"

namespace asyncflow {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kStderrTailBytes = 4096;

/// What a starter thread keeps: its memory cgroup (kThread placement), which the children
/// it starts are born in. Each has its own condition variable: a wake-up goes to one starter
/// that is free to start, not to all of them (on 2 cores, waking 4 to start 1 cost a fifth of
/// the throughput). Its flag is guarded by the backend's mutex. Not thread-safe otherwise.
struct Starter {
  detail::ThreadMemoryGroup memory;
  CondVar cv;
  bool waiting = false;  // asleep on cv, not yet woken
};

/// One task holding a slot: being started, or running as a child.
struct Child {
  BackendTask* task = nullptr;
  const void* owner = nullptr;
  Command command;
  detail::OutputSinks sinks;
  detail::GroupControl group;
  int pidfd = -1;
  // Usage measurement (ProcessBackendOptions::measure_usage).
  std::optional<detail::ProcessUsageMeter> meter;
  const detail::MemoryGroup* memory_group = nullptr;  ///< where its peak is read, or null
  std::unique_ptr<detail::MemoryGroup> own_group;     ///< kProcess placement: its own
  bool in_group = false;                              ///< the child started in memory_group
  bool watched = false;  ///< its pidfd is in the reaper's set (else its starter reaps it)
};

constexpr const char* kCanceledRunning = " while running (its process group was killed)";
constexpr const char* kShutdownRunning =
    " by engine shutdown while running (its process group was killed)";

}  // namespace

class ProcessBackend::Impl {
 public:
  explicit Impl(ProcessBackendOptions options)
      : name_(std::move(options.name)),
        max_(options.max_processes != 0 ? options.max_processes
                                        : std::max(1u, std::thread::hardware_concurrency())),
        measure_usage_(options.measure_usage),
        placement_(options.measure_usage && options.measure_peak_memory
                       ? detail::MemoryGroup::placement()
                       : detail::MemoryGroup::Placement::kNone),
        // A thread whose cgroup its children are born in starts one child at a time.
        spawners_(placement_ == detail::MemoryGroup::Placement::kThread
                      ? max_
                      : std::min(max_, options.spawn_threads != 0 ? options.spawn_threads
                                                                  : default_spawn_threads())),
        grace_(options.kill_grace),
        worker_options_{.backend_name = name_,
                        .workers = options.function_workers != 0 ? options.function_workers : max_,
                        .command = options.worker_command.argv.empty()
                                       ? Command{{"/proc/self/exe", kWorkerFlag}}
                                       : std::move(options.worker_command),
                        .kill_grace = options.kill_grace,
                        .measure_usage = options.measure_usage,
                        .measure_peak_memory = options.measure_peak_memory},
        waiter_("process backend '" + name_ + "'") {
    reaper_ = std::thread([this] { reap_loop(); });
    for (std::size_t i = 0; i < spawners_; ++i) starters_.emplace_back([this] { start_loop(); });
  }

  ~Impl() {
    workers_.reset();  // its own thread; stops its calls first
    std::vector<BackendTask*> never_started;
    {
      MutexLock lock(mu_);
      stopping_ = true;
      never_started.assign(queue_.begin(), queue_.end());
      queue_.clear();
      for (auto& [task, child] : children_) request_stop(*child, kCanceledRunning);
    }
    for (BackendTask* t : never_started)
      t->report_canceled(" by backend shutdown before it started");
    wake();
    {
      MutexLock lock(mu_);
      wake_starters(starter_states_.size());
    }
    reaper_.join();  // once every slot holder has been started and reaped
    for (std::thread& s : starters_) s.join();
  }

  const std::string& name() const noexcept { return name_; }
  std::size_t max_processes() const noexcept { return max_; }
  std::size_t spawn_threads() const noexcept { return spawners_; }
  std::size_t running() const noexcept {
    MutexLock lock(mu_);
    return children_.size();
  }

  void submit(std::span<BackendTask* const> batch) {
    std::vector<Child*> to_start;
    std::vector<BackendTask*> refused;
    std::vector<BackendTask*> calls;
    {
      MutexLock lock(mu_);
      for (BackendTask* t : batch) {
        if (t->kind() == TaskKind::kFunction) {
          calls.push_back(t);  // registered functions: the worker pool
        } else if (stopping_) {
          refused.push_back(t);
        } else if (children_.size() < max_) {
          to_start.push_back(take_slot(t));
        } else {
          // Reported under the lock: once queued, a finishing child may start (and free) it.
          t->report_queued();
          queue_.push_back(t);
        }
      }
    }
    for (BackendTask* t : refused) t->report_canceled(" by backend shutdown before it started");
    hand_off(to_start);
    if (!calls.empty()) {
      detail::FunctionWorkers& w = function_workers();
      for (BackendTask* t : calls) w.submit(t);
    }
  }

  std::vector<pid_t> function_worker_pids() const {
    const detail::FunctionWorkers* w = started_workers();
    return w != nullptr ? w->worker_pids() : std::vector<pid_t>{};
  }

  void cancel(BackendTask& task) noexcept {
    if (task.kind() == TaskKind::kFunction) {
      if (detail::FunctionWorkers* w = started_workers()) w->cancel(task);
      return;
    }
    {
      MutexLock lock(mu_);
      if (!detail::take_task(queue_, &task)) {
        if (auto c = children_.find(&task); c != children_.end())
          request_stop(*c->second, kCanceledRunning);
        return;  // not here (any more): it finished, or its start will see the stop flag
      }
    }
    task.report_canceled("");
  }

  void stop_tasks_of(const void* owner) noexcept {
    if (detail::FunctionWorkers* w = started_workers()) w->stop_tasks_of(owner);
    std::vector<BackendTask*> never_started;
    {
      MutexLock lock(mu_);
      never_started = detail::take_tasks_of(queue_, owner);
      for (auto& [task, child] : children_) {
        if (child->owner == owner) request_stop(*child, kShutdownRunning);
      }
    }
    for (BackendTask* t : never_started)
      t->report_canceled(" by engine shutdown before it started");
  }

 private:
  /// The worker pool, started with the first registered function task. It lives until the
  /// backend's destructor, so the pointer may be used without the lock: calls into it may
  /// report tasks finished, and the engine may then submit more work here.
  detail::FunctionWorkers& function_workers() {
    MutexLock lock(workers_mu_);
    if (!workers_) workers_ = std::make_unique<detail::FunctionWorkers>(worker_options_);
    return *workers_;
  }
  detail::FunctionWorkers* started_workers() const {
    MutexLock lock(workers_mu_);
    return workers_.get();
  }

  // --- slots (mu_ held) ---
  Child* take_slot(BackendTask* t) ASYNCFLOW_REQUIRES(mu_) {
    auto* c = new Child;
    c->task = t;
    c->owner = t->owner();
    children_.emplace(t, c);
    return c;
  }

  /// Frees `c`'s slot; returns the queued task that takes it over, if any (to be started).
  Child* release_slot(Child* c) ASYNCFLOW_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    children_.erase(c->task);
    if (stopping_ || queue_.empty()) {
      if (stopping_ && children_.empty()) {  // the reaper and the starters may leave now
        wake();
        wake_starters(starter_states_.size());
      }
      return nullptr;
    }
    BackendTask* next = queue_.front();
    queue_.pop_front();
    return take_slot(next);
  }

  /// SIGTERM to the group now (or right after spawning), SIGKILL after the grace period.
  void request_stop(Child& c, const char* how) {
    if (c.group.request_stop(how, grace_)) wake();  // the reaper's next deadline changed
  }

  // --- starting ---
  /// Half the hardware threads, at least 2 (a spawn mostly waits for its child's exec, which
  /// runs on another core) and at most 8.
  static std::size_t default_spawn_threads() {
    return std::clamp<std::size_t>(std::thread::hardware_concurrency() / 2, 2, 8);
  }

  /// Gives slot holders to the starter threads. Neither the submitting thread nor the reaper
  /// spawns: a spawn blocks its thread until the child has exec'd.
  void hand_off(std::span<Child* const> cs) {
    if (cs.empty()) return;
    MutexLock lock(mu_);
    starts_.insert(starts_.end(), cs.begin(), cs.end());
    wake_starters(cs.size());
  }
  void hand_off(Child* c) {
    if (c != nullptr) hand_off(std::span<Child* const>(&c, 1));
  }

  /// Wakes up to `n` waiting starters.
  void wake_starters(std::size_t n) ASYNCFLOW_REQUIRES(mu_) {
    for (Starter* s : starter_states_) {
      if (n == 0) return;
      if (s->waiting) {
        s->waiting = false;
        s->cv.notify_one();
        --n;
      }
    }
  }

  void start_loop() {
    Starter me;  // destroyed on this thread, which leaves its cgroup then
    MutexLock lock(mu_);
    starter_states_.push_back(&me);
    for (;;) {
      while (starts_.empty()) {
        if (stopping_ && children_.empty()) {
          std::erase(starter_states_, &me);
          return;
        }
        me.waiting = true;
        me.cv.wait(mu_);
        me.waiting = false;
      }
      Child* c = starts_.front();
      starts_.pop_front();
      if (!starts_.empty()) wake_starters(1);  // the rest to another one
      lock.unlock();
      start_chain(c, me);
      lock.lock();
    }
  }

  void start_chain(Child* c, Starter& me) {
    while (c != nullptr) c = start(c, me);
  }

  /// Starts one child. Returns the next slot holder to start: when this start failed, or
  /// (kThread) once the child ended. A thread whose cgroup its children are born in has one
  /// child at a time, so it waits for it and reaps it itself: handing the reap to the reaper
  /// and the next start back cost two thread switches per task, a tenth of /bin/true's rate.
  Child* start(Child* c, Starter& me) {
    BackendTask& t = *c->task;
    std::exception_ptr failure;
    try {
      c->command = t.command();
      detail::check_spawn_input(label(t), c->command, &t.description().env);
      c->sinks = detail::OutputSinks::open(t);
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) return give_up(c, [&] { t.report_failed(failure); });
    if (!t.report_started()) return give_up(c, [] {});  // canceled meanwhile; reported

    const TaskDescription& d = t.description();
    // The trace context (TRACEPARENT) joins the program to its task's span; the task's own
    // env wins, and a replaced environment is left as the task gave it.
    std::map<std::string, std::string> env_with_context;
    const std::map<std::string, std::string>* env = &d.env;
    if (!d.replace_env) {
      try {
        auto context = t.context_env();
        if (!context.empty()) {
          env_with_context = d.env;
          for (auto& [k, v] : context) env_with_context.try_emplace(std::move(k), std::move(v));
          env = &env_with_context;
        }
      } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the program runs untraced
      }
    }
    detail::SpawnSettings settings{.cwd = d.cwd,
                                   .env = env,
                                   .replace_env = d.replace_env,
                                   .stdout_fd = c->sinks.stdout_fd(),
                                   .stderr_fd = c->sinks.stderr_fd()};
    if (placement_ == detail::MemoryGroup::Placement::kThread) {
      // Reset just before the spawn: what this thread opened for the child is baseline.
      c->memory_group = me.memory.ready();
    } else if (placement_ == detail::MemoryGroup::Placement::kProcess) {
      c->own_group = detail::MemoryGroup::make();
      c->memory_group = c->own_group.get();
      if (c->own_group) settings.cgroup_procs_fd = c->own_group->procs_fd();
    }
    if (measure_usage_) c->meter.emplace();
    const detail::Spawned s = detail::spawn_process(c->command, settings);
    c->in_group = placement_ == detail::MemoryGroup::Placement::kThread ? c->memory_group != nullptr
                                                                        : s.joined_cgroup;
    const int pidfd = s.pidfd;
    if (s.pid < 0) {
      auto error = std::make_exception_ptr(
          ProcessError(label(t) + ": cannot run `" + c->command.display() +
                           "`: " + detail::spawn_error_text(c->command, d.cwd, s.error),
                       ProcessError::Cause::kSpawn, s.error, ""));
      return give_up(c, [&] { t.report_failed(error); });
    }
    if (c->meter) c->meter->spawned(s.pid);
    const bool has_deadline = d.timeout.has_value();
    {
      MutexLock lock(mu_);
      c->group.pid = s.pid;
      c->pidfd = pidfd;
      if (has_deadline) c->group.deadline = Clock::now() + *d.timeout;
      if (c->group.stop_how != nullptr) c->group.terminate(grace_);  // stopped while starting
    }
    if (has_deadline) wake();  // the reaper's next deadline changed; it fires every deadline
    if (placement_ == detail::MemoryGroup::Placement::kThread) {
      detail::wait_readable(pidfd);
      return reap(c);
    }
    // From here the reaper owns `c`, and the task may be reported and gone at any moment.
    c->watched = true;
    waiter_.add(pidfd, c);
    return nullptr;
  }

  template <class Report>
  Child* give_up(Child* c, Report report) {
    Child* next = release_slot(c);
    report();
    delete c;
    return next;
  }

  static std::string label(const BackendTask& t) {
    return "executable task '" + t.name() + "' (" + t.uid() + ")";
  }

  // --- reaping ---
  void wake() noexcept { waiter_.wake(); }

  void reap_loop() {
    void* ready[64];
    for (;;) {
      int timeout_ms = -1;
      {
        MutexLock lock(mu_);
        if (stopping_ && children_.empty()) return;
        timeout_ms = fire_deadlines();
      }
      const int n = waiter_.wait(ready, timeout_ms);
      for (int i = 0; i < n; ++i) hand_off(reap(static_cast<Child*>(ready[i])));
    }
  }

  /// Fires the deadlines that passed; returns the epoll timeout until the next one.
  int fire_deadlines() ASYNCFLOW_REQUIRES(mu_) {
    const auto now = Clock::now();
    std::optional<Clock::time_point> next;
    for (auto& [task, c] : children_) {
      c->group.fire(now, grace_, /*busy=*/true);
      c->group.earliest(next);
    }
    return detail::epoll_timeout_ms(next);
  }

  /// The child `c` exited: kill its strays, reap it, free its slot, report. Returns the next
  /// slot holder to start.
  Child* reap(Child* c) {
    if (c->watched) waiter_.remove(c->pidfd);
    siginfo_t info{};
    const bool known = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(c->pidfd), &info,
                                WEXITED | WNOWAIT) == 0;
    // Its /proc entry lives until it is reaped: its I/O counts are read from the zombie.
    if (known && c->meter) c->meter->read_zombie(c->group.pid, c->memory_group);
    ::kill(-c->group.pid, SIGKILL);  // whatever it left in its group (invariant 3)
    siginfo_t reaped{};
    // The system call itself: glibc's waitid() does not return the rusage (wait4's, here for
    // a pidfd), the child's and that of the descendants it waited for.
    struct rusage rusage {};
    const bool measured =
        ::syscall(SYS_waitid, P_PIDFD, c->pidfd, &reaped, WEXITED, &rusage) == 0 && known;
    ::close(c->pidfd);
    std::optional<TaskUsage> usage;
    if (measured && c->meter) usage = c->meter->finish(rusage, c->in_group);
    c->own_group.reset();  // removed now that its process is gone

    const char* stop_how;
    bool timed_out;
    std::chrono::milliseconds timeout{};
    {
      MutexLock lock(mu_);
      stop_how = c->group.stop_how;
      timed_out = c->group.timed_out;
    }
    if (const auto& t = c->task->description().timeout) timeout = *t;
    BackendTask& t = *c->task;
    // Read the outcome before the slot goes: the task may be freed by the report.
    enum class Outcome { kDone, kFailed, kCanceled } outcome;
    std::string output;
    std::exception_ptr error;
    if (stop_how != nullptr) {
      outcome = Outcome::kCanceled;
    } else if (!known) {
      outcome = Outcome::kFailed;
      error = std::make_exception_ptr(ProcessError(label(t) + ": `" + c->command.display() +
                                                       "` ended, but its exit status was lost "
                                                       "(is SIGCHLD ignored in this process?)",
                                                   ProcessError::Cause::kExitCode, -1,
                                                   c->sinks.stderr_tail(kStderrTailBytes)));
    } else if (timed_out) {
      outcome = Outcome::kFailed;
      error = failure(t, *c, ProcessError::Cause::kTimeout,
                      info.si_code == CLD_EXITED ? 0 : info.si_status,
                      "timed out after " + detail::seconds_text(timeout) + " and was killed");
    } else if (info.si_code == CLD_EXITED && info.si_status == 0) {
      outcome = Outcome::kDone;
      try {
        output = c->sinks.result();
      } catch (...) {
        outcome = Outcome::kFailed;
        error = std::current_exception();
      }
    } else if (info.si_code == CLD_EXITED) {
      outcome = Outcome::kFailed;
      error = failure(t, *c, ProcessError::Cause::kExitCode, info.si_status,
                      "exited with status " + std::to_string(info.si_status));
    } else {
      outcome = Outcome::kFailed;
      error = failure(t, *c, ProcessError::Cause::kSignal, info.si_status,
                      "was killed by " + detail::signal_name(info.si_status) +
                          (info.si_code == CLD_DUMPED ? " (core dumped)" : ""));
    }
    Child* next = release_slot(c);
    switch (outcome) {
      case Outcome::kDone: t.report_completed(std::move(output), usage ? &*usage : nullptr); break;
      case Outcome::kFailed: t.report_failed(std::move(error), usage ? &*usage : nullptr); break;
      case Outcome::kCanceled: t.report_canceled(stop_how); break;
    }
    delete c;
    return next;
  }

  static std::exception_ptr failure(const BackendTask& t, const Child& c, ProcessError::Cause cause,
                                    int code, const std::string& what) {
    std::string tail = c.sinks.stderr_tail(kStderrTailBytes);
    std::string message = label(t) + ": `" + c.command.display() + "` " + what;
    message += tail.empty() ? "; stderr was empty" : "; stderr ends with:\n" + tail;
    return std::make_exception_ptr(ProcessError(std::move(message), cause, code, std::move(tail)));
  }

  const std::string name_;
  const std::size_t max_;
  const bool measure_usage_;
  const detail::MemoryGroup::Placement placement_;
  const std::size_t spawners_;
  const std::chrono::milliseconds grace_;
  const detail::FunctionWorkers::Options worker_options_;
  mutable Mutex workers_mu_;
  std::unique_ptr<detail::FunctionWorkers> workers_
      ASYNCFLOW_GUARDED_BY(workers_mu_);  // the pointer
  detail::FdWaiter waiter_;               // children's pidfds

  mutable Mutex mu_;
  // Slot holders (invariant 1).
  std::unordered_map<BackendTask*, Child*> children_ ASYNCFLOW_GUARDED_BY(mu_);
  std::deque<BackendTask*> queue_ ASYNCFLOW_GUARDED_BY(mu_);  // waiting for a slot, FIFO
  bool stopping_ ASYNCFLOW_GUARDED_BY(mu_) = false;

  // Slot holders the starter threads are to start.
  std::deque<Child*> starts_ ASYNCFLOW_GUARDED_BY(mu_);
  std::vector<Starter*> starter_states_ ASYNCFLOW_GUARDED_BY(mu_);  // each starter thread's
  std::thread reaper_;
  std::vector<std::thread> starters_;
};

std::shared_ptr<ProcessBackend> ProcessBackend::create(ProcessBackendOptions options) {
  return std::make_shared<ProcessBackend>(std::move(options));
}

ProcessBackend::ProcessBackend(ProcessBackendOptions options)
    : impl_((detail::exit_if_unserved_worker(), std::make_unique<Impl>(std::move(options)))) {}
ProcessBackend::~ProcessBackend() = default;

const std::string& ProcessBackend::name() const noexcept {
  return impl_->name();
}
void ProcessBackend::submit(std::span<BackendTask* const> batch) {
  impl_->submit(batch);
}
void ProcessBackend::cancel(BackendTask& task) noexcept {
  impl_->cancel(task);
}
void ProcessBackend::stop_tasks_of(const void* owner) noexcept {
  impl_->stop_tasks_of(owner);
}
std::size_t ProcessBackend::max_processes() const noexcept {
  return impl_->max_processes();
}
std::size_t ProcessBackend::spawn_threads() const noexcept {
  return impl_->spawn_threads();
}
std::size_t ProcessBackend::running() const noexcept {
  return impl_->running();
}
std::vector<pid_t> ProcessBackend::function_worker_pids() const {
  return impl_->function_worker_pids();
}
const std::string& ProcessBackend::peak_memory_method() {
  return detail::MemoryGroup::method();
}
const std::string& ProcessBackend::peak_memory_unavailable_reason() {
  return detail::MemoryGroup::why_unavailable();
}

}  // namespace asyncflow
