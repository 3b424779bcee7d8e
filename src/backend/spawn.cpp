// spawn_process: a vfork-style clone that sets up the child (process group, parent-death
// signal, descriptors, signals, cwd) and execs its program, the parent waiting for the exec.
//
// posix_spawn cannot set a parent-death signal, and without one every program and function
// worker outlived a parent killed by SIGKILL (or by a Ctrl-C it did not handle). The child
// shares our memory until it execs, so it only reads what the parent prepared and makes raw
// system calls: no allocation, no locks, no libc state, no sanitizer bookkeeping.
#include "spawn.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string_view>
#include <system_error>

#include "asyncflow/common/error.hpp"

extern char** environ;

namespace asyncflow::detail {

namespace {

/// The child's environment as "KEY=value" strings.
std::vector<std::string> build_environment(const SpawnSettings& s) {
  std::vector<std::string> out;
  if (!s.replace_env) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view entry(*e);
      const auto eq = entry.find('=');
      const std::string key(entry.substr(0, eq));
      if (s.env != nullptr && s.env->count(key) != 0) continue;  // replaced below
      out.emplace_back(entry);
    }
  }
  if (s.env != nullptr) {
    for (const auto& [key, value] : *s.env) out.push_back(key + "=" + value);
  }
  return out;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  p.reserve(strings.size() + 1);
  for (std::string& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

/// The PATH the program is looked up in: the child's when its environment sets one, else ours
/// (the system default when we have none).
std::string_view lookup_path(const SpawnSettings& s) {
  if (s.env != nullptr) {
    if (auto it = s.env->find("PATH"); it != s.env->end()) return it->second;
  }
  const char* ours = ::getenv("PATH");
  return ours != nullptr ? ours : "/bin:/usr/bin";
}

/// The paths to try for `program`, as execvp would: itself when it has a '/', else in each
/// directory of `path` (an empty entry is the current directory).
std::vector<std::string> program_paths(const std::string& program, std::string_view path) {
  if (program.find('/') != std::string::npos) return {program};
  std::vector<std::string> out;
  for (;;) {
    const std::size_t colon = path.find(':');
    std::string_view dir = path.substr(0, colon);
    if (dir.empty()) dir = ".";
    std::string& p = out.emplace_back(dir);
    p += '/';
    p += program;
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return out;
}

/// The signals this process ignores now (checked at every spawn: a program may change them).
/// They would stay ignored across exec (a server ignoring SIGPIPE, say), so the child resets
/// them, as a shell would start it. Handled signals need nothing: the child blocks every
/// signal until it execs, and exec resets handlers itself.
sigset_t ignored_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig = 1; sig < SIGRTMIN; ++sig) {
    struct sigaction sa {};
    if (sig != SIGKILL && sig != SIGSTOP && ::sigaction(sig, nullptr, &sa) == 0 &&
        sa.sa_handler == SIG_IGN) {
      sigaddset(&set, sig);
    }
  }
  return set;
}

/// One /dev/null descriptor for all children, opened once (-1 when it cannot be: each child
/// then opens the path itself).
int dev_null() {
  static const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  return fd;
}

constexpr int kNone = -1;     // ChildPlan::source: leave the descriptor as it is
constexpr int kDevNull = -2;  // ChildPlan::source: open /dev/null

/// Everything the child needs, prepared by the parent (the child may not allocate).
struct ChildPlan {
  int source[4];  ///< what becomes fd 0..3: a descriptor, kDevNull or kNone
  const char* cwd = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const std::string* paths = nullptr;  ///< where to look for the program, in order
  std::size_t path_count = 0;
  sigset_t to_default;
  pid_t parent = 0;
  int death_signal = 0;
  int cgroup_fd = -1;
  bool cgroup_joined = false;  ///< set by the child
  int error = 0;               ///< set by the child when it does not exec
};

/// Runs in the child, on a stack of its own, in our memory; returns only when it cannot exec.
__attribute__((no_sanitize("address", "thread", "undefined"))) int child_main(void* arg) {
  ChildPlan& p = *static_cast<ChildPlan*>(arg);
  // Raw calls: libc's wrappers and a sanitizer's interceptors keep state for the parent's
  // thread, which this child borrows. Each returns -errno.
  auto call = [](long number, auto... args) {
    return static_cast<long>(::syscall(number, args...)) < 0 ? errno : 0;
  };
  auto give_up = [&p](int error) {
    p.error = error;
    return 127;
  };
  // Own process group (pgid = pid): cancel and timeout kill the whole group, grandchildren too.
  if (int e = call(SYS_setpgid, 0, 0)) return give_up(e);
  if (p.death_signal != 0) {
    if (int e = call(SYS_prctl, PR_SET_PDEATHSIG, p.death_signal, 0, 0, 0)) return give_up(e);
    // The parent may have died before the signal was armed; then nobody would send it.
    if (::syscall(SYS_getppid) != p.parent) return give_up(ESRCH);
  }
  // A source that is itself one of 0..3 would be overwritten by an earlier dup2: move it up.
  for (int fd = 0; fd < 4; ++fd) {
    int& src = p.source[fd];
    if (src == kDevNull) {
      const long null_fd = ::syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC);
      if (null_fd < 0) return give_up(errno);
      src = static_cast<int>(null_fd);
    }
    if (src >= 0 && src < 4 && src != fd) {
      const long moved = ::syscall(SYS_fcntl, src, F_DUPFD_CLOEXEC, 4);
      if (moved < 0) return give_up(errno);
      src = static_cast<int>(moved);
    }
  }
  for (int fd = 0; fd < 4; ++fd) {
    const int src = p.source[fd];
    if (src < 0) continue;
    // dup2 onto itself would keep close-on-exec set.
    const int e = src == fd ? call(SYS_fcntl, fd, F_SETFD, 0) : call(SYS_dup2, src, fd);
    if (e != 0) return give_up(e);
  }
  if (p.cwd != nullptr) {
    if (int e = call(SYS_chdir, p.cwd)) return give_up(e);
  }
  // "0": the writer. A group it cannot join leaves its peak memory unmeasured, nothing else.
  if (p.cgroup_fd >= 0) p.cgroup_joined = ::syscall(SYS_write, p.cgroup_fd, "0", 1) == 1;
  struct KernelSigaction {  // the kernel's struct sigaction, not libc's
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    unsigned long mask;
  };
  const KernelSigaction to_default{SIG_DFL, 0, nullptr, 0};
  for (int sig = 1; sig < SIGRTMIN; ++sig) {
    if (sigismember(&p.to_default, sig) == 1) {
      if (int e = call(SYS_rt_sigaction, sig, &to_default, nullptr, sizeof(unsigned long))) {
        return give_up(e);
      }
    }
  }
  // Unblock just before exec: no handler of ours can run here, the signals are ones sent to
  // this new group, which only the parent knows.
  const unsigned long none = 0;
  if (int e = call(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof none)) {
    return give_up(e);
  }
  // As execvp: try each directory; "not here" moves on, "here but not executable" is kept as
  // the answer unless a later directory has a program that runs.
  int error = ENOENT;
  bool denied = false;
  for (std::size_t i = 0; i < p.path_count; ++i) {
    const int e = call(SYS_execve, p.paths[i].c_str(), p.argv, p.envp);
    if (e == EACCES) {
      denied = true;
    } else if (e != ENOENT && e != ENOTDIR && e != ESTALE && e != ENODEV && e != ETIMEDOUT) {
      error = e;
      break;
    }
  }
  return give_up(denied && error == ENOENT ? EACCES : error);
}

using CloneFunction = int (*)(int (*)(void*), void*, int, void*, ...);

/// glibc's clone(). ThreadSanitizer's runtime intercepts clone() and treats it as a fork,
/// resetting its own bookkeeping in the child, which here shares our memory: its later race
/// reports were false. glibc's own symbol is asked for by name.
CloneFunction libc_clone() {
  static const CloneFunction fn = [] {
    void* libc = ::dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void* symbol = libc != nullptr ? ::dlsym(libc, "clone") : nullptr;
    return symbol != nullptr ? reinterpret_cast<CloneFunction>(symbol) : &::clone;
  }();
  return fn;
}

/// Blocks every signal of the calling thread for its lifetime: the child starts with our
/// handlers (run in our memory) until it execs, so none may run there.
class AllSignalsBlocked {
 public:
  AllSignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &saved_);
  }
  ~AllSignalsBlocked() { ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  AllSignalsBlocked(const AllSignalsBlocked&) = delete;
  AllSignalsBlocked& operator=(const AllSignalsBlocked&) = delete;

 private:
  sigset_t saved_;
};

bool has_nul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

/// `s` with each NUL shown as "\0", for a message (what() ends at a NUL).
std::string visible(std::string_view s) {
  std::string out;
  for (char c : s) c == '\0' ? out += "\\0" : out += c;
  return out;
}

}  // namespace

void check_spawn_input(std::string_view who, const Command& command,
                       const std::map<std::string, std::string>* env) {
  const std::string prefix = std::string(who) + ": ";
  if (command.argv.empty() || command.argv.front().empty()) {
    throw Error(prefix + "the command has no program (argv is empty or argv[0] is \"\")");
  }
  for (std::size_t i = 0; i < command.argv.size(); ++i) {
    if (has_nul(command.argv[i])) {
      // Not quoted: a NUL would end the message too.
      throw Error(prefix + "argument " + std::to_string(i) + " of its command (program '" +
                  visible(command.argv.front()) +
                  "') contains a NUL byte: a program's arguments end at the first NUL, so it "
                  "would get a cut argument");
    }
  }
  if (env == nullptr) return;
  for (const auto& [key, value] : *env) {
    if (key.empty()) throw Error(prefix + "its environment has an empty variable name");
    if (key.find('=') != std::string::npos || has_nul(key)) {
      throw Error(prefix + "its environment variable name '" + visible(key) +
                  "' contains '=' or a NUL byte: the program would see another variable");
    }
    // The value is not quoted: it may be secret.
    if (has_nul(value)) {
      throw Error(prefix + "the value of its environment variable '" + key +
                  "' contains a NUL byte: the program would get it cut");
    }
  }
}

Spawned spawn_process(const Command& command, const SpawnSettings& settings) {
  ChildPlan plan;
  const int from[4] = {settings.stdin_fd, settings.stdout_fd, settings.stderr_fd, settings.fd3};
  for (int fd = 0; fd < 4; ++fd) {
    plan.source[fd] = from[fd] >= 0 ? from[fd] : fd == 3 ? kNone : dev_null();
    if (plan.source[fd] == -1 && fd != 3) plan.source[fd] = kDevNull;  // dev_null() failed
  }
  if (!settings.cwd.empty()) plan.cwd = settings.cwd.c_str();

  std::vector<std::string> args = command.argv;
  std::vector<char*> argv = pointers(args);
  plan.argv = argv.data();
  const bool default_env =
      !settings.replace_env && (settings.env == nullptr || settings.env->empty());
  std::vector<std::string> env_strings;
  std::vector<char*> envp;
  if (!default_env) {
    env_strings = build_environment(settings);
    envp = pointers(env_strings);
  }
  plan.envp = default_env ? environ : envp.data();
  const std::vector<std::string> paths = program_paths(command.argv.front(), lookup_path(settings));
  plan.paths = paths.data();
  plan.path_count = paths.size();
  plan.to_default = ignored_signals();
  plan.parent = ::getpid();
  plan.death_signal = settings.parent_death_signal;
  plan.cgroup_fd = settings.cgroup_procs_fd;

  // The child runs on this area of our stack: this thread waits for its exec (CLONE_VFORK).
  alignas(64) std::byte child_stack[32 * 1024];
  int pidfd = -1;
  pid_t pid;
  {
    AllSignalsBlocked blocked;
    pid = libc_clone()(child_main, child_stack + sizeof child_stack,
                       CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &plan, &pidfd);
  }
  if (pid < 0) return {.error = errno};
  if (plan.error != 0) {  // it did not exec: reap it
    ::waitpid(pid, nullptr, 0);
    if (pidfd >= 0) ::close(pidfd);
    return {.error = plan.error};
  }
  return {.pid = pid, .pidfd = pidfd, .joined_cgroup = plan.cgroup_joined};
}

std::string spawn_error_text(const Command& command, const std::string& cwd, int error) {
  const std::string& program = command.argv.front();
  const bool searched = program.find('/') == std::string::npos;
  switch (error) {
    case ENOENT:
      if (!cwd.empty() && ::access(cwd.c_str(), F_OK) != 0) {
        return "working directory '" + cwd + "' does not exist";
      }
      return "no such program '" + program + "'" + (searched ? " (not found in PATH)" : "");
    case EACCES:
      return "program '" + program +
             "' is not executable (or a directory on its path is not "
             "searchable)";
    case ENOEXEC: return "program '" + program + "' is not in an executable format";
    case ESRCH: return "its parent (this process) was ending when it started";
    default:
      return "cannot start program '" + program +
             "': " + std::error_code(error, std::generic_category()).message();
  }
}

}  // namespace asyncflow::detail
