// FunctionWorkers: a FIFO of registered-function calls, a pool of worker processes connected by
// Unix sockets, and one thread that reads their answers and notices their deaths.
//
// Invariants (under mu_):
//  1. A worker runs at most one task (`task`); a task is in the queue or with one worker.
//  2. A worker's task is set before the task is reported started, so a cancel either stops the
//     task in report_started() or finds it here and kills the worker.
//  3. Only the waiting thread spawns, writes to, reaps and removes workers. Other threads assign
//     a task to a worker and list the worker in pending_; the waiting thread then starts it or
//     sends it the call. So no other thread can hold a worker that is being reaped.
//  4. Requests are written without blocking; what does not fit in the socket is kept in the
//     worker's outbox and written when the socket is writable, so a worker that stops reading
//     cannot stall the waiting thread (its timeout and cancel still act).
#include "function_workers.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <type_traits>

#include "asyncflow/backend/errors.hpp"
#include "asyncflow/backend/process_backend.hpp"
#include "asyncflow/backend/task_usage.hpp"
#include "asyncflow/common/thread_annotations.hpp"
#include "fd_waiter.hpp"
#include "process_util.hpp"
#include "spawn.hpp"

namespace asyncflow::detail {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kCanceledRunning = " while running (its worker process was killed)";
constexpr const char* kShutdownRunning =
    " by engine shutdown while running (its worker process was killed)";

/// How a task is reported canceled when its worker was stopped before the task was sent.
const char* before_start(const char* how) {
  return how == kShutdownRunning ? " by engine shutdown before it started" : "";
}

struct Worker {
  GroupControl group;  // a stop request kills the worker (its call with it)
  int pidfd = -1;
  int socket = -1;
  std::string inbox;             // answer bytes read so far
  std::string outbox;            // request bytes not yet written (invariant 4)
  std::size_t written = 0;       // of outbox
  bool watching_output = false;  // the socket is in the epoll set for writability too
  BackendTask* task = nullptr;   // the call it runs (invariant 1)
};

// FdWaiter tags: a worker's pidfd is the worker's address, its socket the address | 1.
void* tag(Worker* w, std::uintptr_t t) {
  return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(w) | t);
}

std::string label(const BackendTask& t) {
  return "registered function '" + t.name() + "' (" + t.uid() + ")";
}

}  // namespace

class FunctionWorkers::Impl {
 public:
  explicit Impl(Options options)
      : o_(std::move(options)), waiter_("process backend '" + o_.backend_name + "'") {
    if (o_.measure_usage)
      worker_env_.emplace(kWorkerUsageVariable, o_.measure_peak_memory ? "1" : "no-peak");
    thread_ = std::thread([this] { loop(); });
  }

  ~Impl() {
    std::vector<BackendTask*> never_started;
    {
      MutexLock lock(mu_);
      stopping_ = true;
      never_started.assign(queue_.begin(), queue_.end());
      queue_.clear();
      for (Worker& w : workers_) {
        if (w.task != nullptr) {
          request_stop(w, kCanceledRunning);
        } else if (w.socket >= 0) {
          ::shutdown(w.socket, SHUT_WR);  // end of input: the worker exits
        }
      }
    }
    for (BackendTask* t : never_started)
      t->report_canceled(" by backend shutdown before it started");
    wake();
    thread_.join();
  }

  void submit(BackendTask* t) {
    {
      MutexLock lock(mu_);
      if (!stopping_) {
        Worker* w = find_idle();
        if (w == nullptr && workers_.size() < o_.workers) w = &workers_.emplace_back();
        if (w == nullptr) {
          t->report_queued();  // under the lock: once queued, another thread may run it
          queue_.push_back(t);
          return;
        }
        w->task = t;  // the waiting thread starts the worker if new, and sends the call
        pending_.push_back(w);
        wake();
        return;
      }
    }
    t->report_canceled(" by backend shutdown before it started");
  }

  bool cancel(BackendTask& task) noexcept {
    {
      MutexLock lock(mu_);
      if (!take_task(queue_, &task)) {
        for (Worker& w : workers_) {
          if (w.task == &task) {
            request_stop(w, kCanceledRunning);
            return true;
          }
        }
        return false;
      }
    }
    task.report_canceled("");
    return true;
  }

  void stop_tasks_of(const void* owner) noexcept {
    std::vector<BackendTask*> never_started;
    {
      MutexLock lock(mu_);
      never_started = take_tasks_of(queue_, owner);
      for (Worker& w : workers_) {
        if (w.task != nullptr && w.task->owner() == owner) request_stop(w, kShutdownRunning);
      }
    }
    for (BackendTask* t : never_started)
      t->report_canceled(" by engine shutdown before it started");
  }

  std::vector<pid_t> worker_pids() const {
    MutexLock lock(mu_);
    std::vector<pid_t> pids;
    for (const Worker& w : workers_) {
      if (w.group.pid > 0) pids.push_back(w.group.pid);
    }
    return pids;
  }

 private:
  // --- under mu_ ---
  Worker* find_idle() ASYNCFLOW_REQUIRES(mu_) {
    for (Worker& w : workers_) {
      if (w.task == nullptr && w.group.pid > 0 && w.group.stop_how == nullptr && w.socket >= 0) {
        return &w;
      }
    }
    return nullptr;
  }

  void request_stop(Worker& w, const char* how) {
    if (w.group.request_stop(how, o_.kill_grace)) wake();
  }

  /// `w` finished its task: gives it the next queued one, or lets it idle (or exit when the
  /// pool stops). Returns whether it got a task to run.
  bool take_next(Worker& w) ASYNCFLOW_REQUIRES(mu_) {
    w.task = nullptr;
    w.group.deadline.reset();
    if (stopping_ || queue_.empty()) {
      if (stopping_ && w.socket >= 0) ::shutdown(w.socket, SHUT_WR);
      return false;
    }
    w.task = queue_.front();
    queue_.pop_front();
    return true;
  }

  // --- the waiting thread: starting, calling, answers, deaths ---
  void wake() noexcept { waiter_.wake(); }

  void loop() {
    void* ready[32];
    std::vector<Worker*> pending;  // swapped with pending_: the two buffers keep their capacity
    for (;;) {
      int timeout_ms;
      {
        MutexLock lock(mu_);
        if (stopping_ && workers_.empty()) return;
        pending.swap(pending_);
        timeout_ms = pending.empty() ? fire_deadlines() : 0;
      }
      for (Worker* w : pending) {
        if (w->group.pid > 0) {
          run_chain(w);
        } else {
          start_worker(w);
        }
      }
      if (!pending.empty()) {
        pending.clear();
        continue;  // deadlines and waiting next round
      }
      const int n = waiter_.wait(ready, timeout_ms);
      std::vector<Worker*> gone;  // reaped in this batch: later events of theirs are stale
      for (int i = 0; i < n; ++i) {
        const auto bits = reinterpret_cast<std::uintptr_t>(ready[i]);
        Worker* w = reinterpret_cast<Worker*>(bits & ~std::uintptr_t{1});
        if (std::find(gone.begin(), gone.end(), w) != gone.end()) continue;
        if ((bits & 1) != 0) {
          write_request(w);
          read_answers(w);
        } else if (reap(w)) {
          gone.push_back(w);
        }
      }
    }
  }

  /// Starts `w`, and the replacements created when starts fail.
  void start_worker(Worker* w) {
    while (w != nullptr) w = start_one(w);
  }

  /// Spawns the worker `w` was created for, then sends it its task. When it cannot be started
  /// (or was stopped first), its task ends here; returns the worker created for the next queued
  /// task then, if any.
  Worker* start_one(Worker* w) {
    int fds[2] = {-1, -1};
    int error = 0;
    Spawned s;
    if (stop_requested(*w)) {
      error = ECANCELED;
    } else if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      error = errno;
    } else {
      // The worker's end of the socket is its fd 3, named in its environment: a function (or
      // a program it runs) that reads stdin gets /dev/null, not protocol bytes, and what it
      // prints goes to our stderr.
      SpawnSettings settings;
      settings.fd3 = fds[1];
      settings.stdout_fd = 2;
      settings.stderr_fd = 2;
      settings.env = &worker_env_;
      s = spawn_process(o_.command, settings);
      ::close(fds[1]);
      error = s.error;
    }
    if (s.pid < 0) {
      if (fds[0] >= 0) ::close(fds[0]);
      BackendTask* t;
      const char* stop_how;
      Worker* replacement;
      {
        MutexLock lock(mu_);
        t = w->task;
        stop_how = w->group.stop_how;
        workers_.remove_if([w](const Worker& x) { return &x == w; });
        replacement = replace_locked();
      }
      if (stop_how != nullptr) {
        t->report_canceled(before_start(stop_how));
      } else {
        if (error == 0) error = EIO;
        t->report_failed(std::make_exception_ptr(
            ProcessError(label(*t) + ": cannot start a worker process (`" + o_.command.display() +
                             "`): " + spawn_error_text(o_.command, "", error),
                         ProcessError::Cause::kSpawn, error, "")));
      }
      return replacement;
    }
    {
      MutexLock lock(mu_);
      w->group.pid = s.pid;
      w->pidfd = s.pidfd;
      w->socket = fds[0];
      if (w->group.stop_how != nullptr) w->group.terminate(o_.kill_grace);
    }
    waiter_.add(w->socket, tag(w, 1));
    waiter_.add(w->pidfd, tag(w, 0));
    run_chain(w);
    return nullptr;
  }

  bool stop_requested(const Worker& w) const {
    MutexLock lock(mu_);
    return w.group.stop_how != nullptr;
  }

  /// A worker left the pool (mu_ held): when work waits, a new worker is created for the
  /// oldest queued task; the caller starts it.
  Worker* replace_locked() ASYNCFLOW_REQUIRES(mu_) {
    if (stopping_ || queue_.empty()) return nullptr;
    Worker* w = &workers_.emplace_back();
    w->task = queue_.front();
    queue_.pop_front();
    return w;
  }

  /// Sends `w`'s task; when that task cannot be sent (its arguments did not serialize, or it
  /// was canceled first), moves on to the next queued one.
  void run_chain(Worker* w) {
    for (;;) {
      BackendTask* t;
      {
        MutexLock lock(mu_);
        t = w->task;
      }
      if (t == nullptr) return;
      std::string request;
      std::exception_ptr failure;
      try {
        request = t->function_request();
        request += '\n';
      } catch (...) {
        failure = std::current_exception();
      }
      if (!failure && t->report_started()) {
        if (const std::optional<std::chrono::milliseconds> timeout = t->description().timeout) {
          MutexLock lock(mu_);
          w->group.deadline = Clock::now() + *timeout;
        }
        w->outbox = std::move(request);
        w->written = 0;
        write_request(w);
        return;
      }
      bool more = false;
      {
        MutexLock lock(mu_);
        if (w->group.stop_how == nullptr) {
          more = take_next(*w);
        } else {
          // The stop was meant for the call that was not sent; the worker is being killed all
          // the same and must not take another. Its reap starts a replacement.
          w->task = nullptr;
          w->group.deadline.reset();
        }
      }
      if (failure) t->report_failed(failure);  // (a refused start has been reported canceled)
      if (!more) return;
    }
  }

  /// Writes what the socket takes of `w`'s outbox now, and watches the socket for room while
  /// some is left (invariant 4). A failed write means the worker died: its exit fails the task.
  void write_request(Worker* w) {
    while (w->written < w->outbox.size()) {
      const ssize_t n = ::send(w->socket, w->outbox.data() + w->written,
                               w->outbox.size() - w->written, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) {
        w->written = w->outbox.size();  // dropped: the pidfd reports the death
        break;
      }
      w->written += static_cast<std::size_t>(n);
    }
    const bool rest = w->written < w->outbox.size();
    if (!rest) {
      w->outbox.clear();
      w->written = 0;
    }
    if (rest != w->watching_output) {
      w->watching_output = rest;
      waiter_.watch(w->socket, tag(w, 1), rest);
    }
  }

  /// Fires the deadlines that passed; returns the epoll timeout until the next one.
  int fire_deadlines() ASYNCFLOW_REQUIRES(mu_) {
    const auto now = Clock::now();
    std::optional<Clock::time_point> next;
    for (Worker& w : workers_) {
      w.group.fire(now, o_.kill_grace, /*busy=*/w.task != nullptr);
      w.group.earliest(next);
    }
    return epoll_timeout_ms(next);
  }

  /// Reads what `w` has written; each complete line answers its task. A `dying` worker gets no
  /// next task (the queue's head goes to its replacement).
  void read_answers(Worker* w, bool dying = false) {
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(w->socket, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // drained, or end of stream (its exit is noticed on the pidfd)
      w->inbox.append(buf, static_cast<std::size_t>(n));
    }
    for (std::size_t nl; (nl = w->inbox.find('\n')) != std::string::npos;) {
      std::string line = w->inbox.substr(0, nl);
      w->inbox.erase(0, nl + 1);
      answer(w, line, dying);
    }
  }

  void answer(Worker* w, const std::string& line, bool dying) {
    BackendTask* t;
    const char* stop_how;
    bool timed_out;
    bool more;
    {
      MutexLock lock(mu_);
      t = w->task;
      stop_how = w->group.stop_how;
      timed_out = w->group.timed_out;
      if (t == nullptr || stop_how != nullptr || timed_out) return;  // its death will report it
      if (dying) {
        w->task = nullptr;
        more = false;
      } else {
        more = take_next(*w);
      }
    }
    report_answer(*t, line);
    if (more) run_chain(w);
  }

  /// The call's usage an answer carries (kWorkerUsageVariable); fields that are not numbers of
  /// their kind are left out.
  static std::optional<TaskUsage> usage_of(const nlohmann::json& answer) {
    const auto it = answer.find("usage");
    if (it == answer.end() || !it->is_object()) return std::nullopt;
    TaskUsage usage;
    visit_usage_fields(usage, [&](const char* name, auto& field) {
      using Value = typename std::remove_reference_t<decltype(field)>::value_type;
      const auto f = it->find(name);
      if (f == it->end() || !f->is_number()) return;
      if (std::is_integral_v<Value> && !f->is_number_unsigned()) return;
      field = f->template get<Value>();
    });
    if (usage.empty()) return std::nullopt;
    return usage;
  }

  static void report_answer(BackendTask& t, const std::string& line) {
    try {
      const nlohmann::json a = nlohmann::json::parse(line);
      const std::optional<TaskUsage> usage = usage_of(a);
      const TaskUsage* measured = usage ? &*usage : nullptr;
      if (a.at("ok").get<bool>()) {
        t.report_completed(a.at("result").dump(), measured);
        return;
      }
      const auto type = a.at("error_type").get<std::string>();
      const auto message = a.at("message").get<std::string>();
      t.report_failed(std::make_exception_ptr(RemoteFunctionError(
                          label(t) + " threw " + type + ": " + message, type, message)),
                      measured);
    } catch (const nlohmann::json::exception& e) {
      t.report_failed(std::make_exception_ptr(
          Error(label(t) + ": its worker answered something that is not a call result (" +
                e.what() + ")")));
    }
  }

  /// `w` exited: its task (if any) failed with it, unless canceled; a replacement starts when
  /// work waits.
  /// Returns false (and does nothing) when `w` has not exited after all.
  bool reap(Worker* w) {
    siginfo_t info{};
    const bool known = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(w->pidfd), &info,
                                WEXITED | WNOWAIT | WNOHANG) == 0;
    if (known && info.si_pid == 0) return false;  // still running
    read_answers(w, /*dying=*/true);  // an answer written just before it died still counts
    waiter_.remove(w->pidfd);
    waiter_.remove(w->socket);
    ::kill(-w->group.pid, SIGKILL);  // whatever it left in its group
    siginfo_t reaped{};
    ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(w->pidfd), &reaped, WEXITED);
    BackendTask* t;
    const char* stop_how;
    bool timed_out;
    const pid_t pid = w->group.pid;
    Worker* replacement = nullptr;
    {
      MutexLock lock(mu_);
      t = w->task;
      stop_how = w->group.stop_how;
      timed_out = w->group.timed_out;
      ::close(w->pidfd);
      ::close(w->socket);  // under the lock: other threads shut it down under it
      std::erase(pending_, w);
      workers_.remove_if([w](const Worker& x) { return &x == w; });
      replacement = replace_locked();
    }
    if (t != nullptr) {
      if (stop_how != nullptr) {
        t->report_canceled(stop_how);
      } else {
        std::string how = !known      ? "ended (status lost)"
                          : timed_out ? "was killed after the task's timeout"
                          : info.si_code == CLD_EXITED
                              ? "exited with status " + std::to_string(info.si_status)
                              : "was killed by " + signal_name(info.si_status);
        const auto cause = timed_out                    ? ProcessError::Cause::kTimeout
                           : info.si_code == CLD_EXITED ? ProcessError::Cause::kExitCode
                                                        : ProcessError::Cause::kSignal;
        const bool unserved =
            !timed_out && info.si_code == CLD_EXITED && info.si_status == kUnservedWorkerStatus;
        t->report_failed(std::make_exception_ptr(ProcessError(
            label(*t) + ": its worker process " + std::to_string(pid) + " " + how +
                (timed_out ? "" : " while running it") +
                (unserved ? ": the worker program did not call asyncflow::serve_if_worker(argc, "
                            "argv) first in main(), so it ran the whole program instead of "
                            "serving calls"
                          : "; the worker is replaced"),
            cause, info.si_status, "")));
      }
    }
    if (replacement != nullptr) start_worker(replacement);
    return true;
  }

  const Options o_;
  /// Added to each worker's environment: where its connection is.
  std::map<std::string, std::string> worker_env_{{kWorkerFdVariable, "3"}};  // set in the ctor
  FdWaiter waiter_;  // workers' sockets (tag 1) and pidfds (tag 0)
  mutable Mutex mu_;
  // Stable addresses (epoll data points at them).
  std::list<Worker> workers_ ASYNCFLOW_GUARDED_BY(mu_);
  std::deque<BackendTask*> queue_ ASYNCFLOW_GUARDED_BY(mu_);  // calls waiting for a worker, FIFO
  // To start, or to send their task to (invariant 3).
  std::vector<Worker*> pending_ ASYNCFLOW_GUARDED_BY(mu_);
  bool stopping_ ASYNCFLOW_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

FunctionWorkers::FunctionWorkers(Options options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
FunctionWorkers::~FunctionWorkers() = default;
void FunctionWorkers::submit(BackendTask* task) {
  impl_->submit(task);
}
bool FunctionWorkers::cancel(BackendTask& task) noexcept {
  return impl_->cancel(task);
}
void FunctionWorkers::stop_tasks_of(const void* owner) noexcept {
  impl_->stop_tasks_of(owner);
}
std::vector<pid_t> FunctionWorkers::worker_pids() const {
  return impl_->worker_pids();
}

void exit_if_unserved_worker() {
  if (::getenv(kWorkerFdVariable) == nullptr) return;  // serve_if_worker() unsets it
  std::fprintf(stderr,
               "asyncflow: this process was started as a function worker (%s), but its main() "
               "did not call asyncflow::serve_if_worker(argc, argv) first: it ran the program "
               "and reached a ProcessBackend, which would start workers of its own. Exiting "
               "with status %d.\n",
               kWorkerFlag, kUnservedWorkerStatus);
  std::_Exit(kUnservedWorkerStatus);
}

}  // namespace asyncflow::detail
