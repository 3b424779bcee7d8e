// spawn_process: posix_spawn with a process group, a clean signal state and redirected output.
#include "spawn.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>
#include <system_error>

#include "process_util.hpp"

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

/// Owns the posix_spawn attribute objects.
struct SpawnAttributes {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnAttributes() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnAttributes() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
};

/// The signals this process ignores now (checked at every spawn: a program may change them).
const sigset_t& ignored_signals() {
  thread_local sigset_t set;
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

/// One /dev/null descriptor for all children: the child dup2()s it instead of opening the path,
/// which would run a path lookup in every child while the spawning thread waits. -1 when it
/// cannot be opened (the child then opens the path itself).
int dev_null() {
  static const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  return fd;
}

/// Redirects `target` to `fd`, or to /dev/null when `fd` is -1.
int redirect(posix_spawn_file_actions_t* actions, int fd, int target, int open_flags) {
  if (fd < 0) fd = dev_null();
  return fd >= 0 ? posix_spawn_file_actions_adddup2(actions, fd, target)
                 : posix_spawn_file_actions_addopen(actions, target, "/dev/null", open_flags, 0);
}

}  // namespace

Spawned spawn_process(const Command& command, const SpawnSettings& settings) {
  SpawnAttributes a;
  // Own process group (pgid = pid): cancel and timeout kill the whole group, grandchildren too.
  short flags = POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  posix_spawnattr_setpgroup(&a.attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&a.attr, &none);
  // Signals the parent ignores (a server ignoring SIGPIPE, say) would stay ignored across exec:
  // they start at their defaults in the child, as a shell would start it. (Handled signals
  // are reset by exec itself.) Only those are listed: the child resets each listed signal with
  // a system call while the parent waits for its exec, and a full set cost ~60 calls per spawn.
  posix_spawnattr_setsigdefault(&a.attr, &ignored_signals());
  posix_spawnattr_setflags(&a.attr, flags);

  int rc = redirect(&a.actions, settings.stdin_fd, 0, O_RDONLY);
  if (rc == 0) rc = redirect(&a.actions, settings.stdout_fd, 1, O_WRONLY);
  if (rc == 0) rc = redirect(&a.actions, settings.stderr_fd, 2, O_WRONLY);
  if (rc == 0 && !settings.cwd.empty()) {
    rc = posix_spawn_file_actions_addchdir_np(&a.actions, settings.cwd.c_str());
  }
  if (rc != 0) return {.error = rc};

  std::vector<std::string> args = command.argv;
  std::vector<char*> argv = pointers(args);
  const bool default_env =
      !settings.replace_env && (settings.env == nullptr || settings.env->empty());
  std::vector<std::string> env_strings;
  std::vector<char*> envp;
  if (!default_env) {
    env_strings = build_environment(settings);
    envp = pointers(env_strings);
  }
  pid_t pid = -1;
  rc = ::posix_spawnp(&pid, argv[0], &a.actions, &a.attr, argv.data(),
                      default_env ? environ : envp.data());
  if (rc != 0) return {.error = rc};
  const int pidfd = open_pidfd(pid);
  if (pidfd < 0) {  // out of descriptors: undo the child
    const int e = errno;
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return {.error = e};
  }
  return {.pid = pid, .pidfd = pidfd};
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
    default:
      return "cannot start program '" + program +
             "': " + std::error_code(error, std::generic_category()).message();
  }
}

}  // namespace asyncflow::detail
