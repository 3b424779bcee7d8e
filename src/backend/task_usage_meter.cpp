// MemoryGroup and ProcessUsageMeter. Peak memory cannot come from rusage: ru_maxrss keeps the
// high-water mark of the address space a child had before exec, which for a child that
// shares ours until exec (spawn.cpp) is this process's own (a /bin/true started from a 400 MB
// parent reports 400 MB). A memory cgroup per task counts from the child's joining on, its
// descendants included.
#include "task_usage_meter.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "common/proc_fields.hpp"

namespace asyncflow::detail {

namespace {

/// A small file's text (cgroup and /proc files), or nullopt.
std::optional<std::string> read_small_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      if (n < 0) return std::nullopt;
      return text;
    }
    text.append(buf, static_cast<std::size_t>(n));
  }
}

bool write_small_file(const std::string& path, std::string_view text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  for (;;) {
    const auto at = s.find(sep);
    out.emplace_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

std::atomic<std::uint64_t> g_next_group{0};

/// Where this process's memory cgroups go, found once.
struct CgroupRoot {
  std::string home;        ///< our own cgroup's directory (threads go back there)
  std::string base;        ///< {home}/asyncflow-{pid}; empty: unavailable
  std::string peak_file;   ///< memory.peak or memory.max_usage_in_bytes
  std::string usage_file;  ///< memory.current or memory.usage_in_bytes
  MemoryGroup::Placement placement = MemoryGroup::Placement::kNone;
  std::string method;
  std::string why;  ///< when unavailable

  ~CgroupRoot() {
    if (!base.empty()) ::rmdir(base.c_str());  // only when empty: its groups are gone
  }
};

struct Mount {
  std::string root;  ///< the mounted subtree of the hierarchy
  std::string point;
};

/// The mount of the cgroup hierarchy of type `fstype` ("cgroup2", or "cgroup" with the
/// memory controller).
std::optional<Mount> find_mount(std::string_view fstype) {
  const auto text = read_small_file("/proc/self/mountinfo");
  if (!text) return std::nullopt;
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    // id parent major:minor root point options [optional...] - fstype source super-options
    const auto fields = split(line, ' ');
    std::size_t dash = 0;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (dash < 5 || dash + 3 >= fields.size() || fields[dash + 1] != fstype) continue;
    if (fstype == "cgroup") {
      bool memory = false;
      for (const auto& o : split(fields[dash + 3], ',')) memory = memory || o == "memory";
      if (!memory) continue;
    }
    return Mount{fields[3], fields[4]};
  }
  return std::nullopt;
}

/// Our cgroup's directory in hierarchy `mount`, from its /proc/self/cgroup path.
std::string our_directory(const Mount& mount, const std::string& path) {
  std::string relative = path;
  if (mount.root != "/" && relative.starts_with(mount.root)) relative.erase(0, mount.root.size());
  return mount.point + relative;
}

/// Removes the groups left by processes of ours that died without removing them.
void remove_stale(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (!name.starts_with("asyncflow-")) continue;
    const auto pid = parse_u64(name.substr(10));
    if (pid && *pid > 0 && ::kill(static_cast<pid_t>(*pid), 0) != 0 && errno == ESRCH)
      stale.push_back(dir + "/" + std::string(name));
  }
  ::closedir(d);
  for (const std::string& s : stale) {
    if (DIR* g = ::opendir(s.c_str())) {
      std::vector<std::string> groups;
      while (const dirent* e = ::readdir(g)) {
        if (e->d_type == DT_DIR && e->d_name[0] != '.') groups.push_back(s + "/" + e->d_name);
      }
      ::closedir(g);
      for (const std::string& t : groups) ::rmdir(t.c_str());
    }
    ::rmdir(s.c_str());
  }
}

/// Makes {dir}/asyncflow-{pid} and checks that a task group made in it has `peak_file`.
bool try_base(CgroupRoot& r, const std::string& dir, const char* peak_file, bool enable_v2) {
  remove_stale(dir);
  const std::string base = dir + "/asyncflow-" + std::to_string(::getpid());
  if (::mkdir(base.c_str(), 0755) != 0 && errno != EEXIST) {
    r.why = "cannot create a cgroup in " + dir + ": " + std::strerror(errno);
    return false;
  }
  if (enable_v2 && !write_small_file(base + "/cgroup.subtree_control", "+memory")) {
    r.why = "cannot enable the memory controller in " + base + ": " + std::strerror(errno);
    ::rmdir(base.c_str());
    return false;
  }
  const std::string probe = base + "/probe";
  const bool made = ::mkdir(probe.c_str(), 0755) == 0;
  const bool has_peak = made && ::access((probe + "/" + peak_file).c_str(), R_OK) == 0;
  if (made) ::rmdir(probe.c_str());
  if (!has_peak) {
    r.why = std::string("a cgroup made in ") + dir + " has no " + peak_file;
    ::rmdir(base.c_str());
    return false;
  }
  r.home = dir;
  r.base = base;
  r.peak_file = peak_file;
  r.usage_file = enable_v2 ? "memory.current" : "memory.usage_in_bytes";
  r.placement = enable_v2 ? MemoryGroup::Placement::kProcess : MemoryGroup::Placement::kThread;
  return true;
}

void detect(CgroupRoot& r) {
  const auto self = read_small_file("/proc/self/cgroup");
  if (!self) {
    r.why = "/proc/self/cgroup is unreadable";
    return;
  }
  std::string v1_path, v2_path;
  bool has_v2 = false;
  std::istringstream lines(*self);
  std::string line;
  while (std::getline(lines, line)) {
    // hierarchy-id:controllers:path
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (line.compare(0, first, "0") == 0 && controllers.empty()) {
      has_v2 = true;
      v2_path = path;
      continue;
    }
    for (const auto& c : split(controllers, ',')) {
      if (c == "memory") v1_path = path;
    }
  }
  // cgroup v2 first: memory.peak (Linux 5.19) where our cgroup lets its children have the
  // memory controller.
  if (has_v2) {
    if (const auto mount = find_mount("cgroup2")) {
      const std::string dir = our_directory(*mount, v2_path);
      const auto controllers = read_small_file(dir + "/cgroup.controllers");
      bool memory = false;
      if (controllers) {
        std::string list = *controllers;
        while (!list.empty() && list.back() == '\n') list.pop_back();
        for (const auto& c : split(list, ' ')) memory = memory || c == "memory";
      }
      if (memory && try_base(r, dir, "memory.peak", /*enable_v2=*/true)) {
        r.method = "cgroup v2 memory.peak";
        return;
      }
      if (!memory) r.why = "the cgroup v2 hierarchy has no memory controller here";
    }
  }
  if (!v1_path.empty()) {
    if (const auto mount = find_mount("cgroup")) {
      if (try_base(r, our_directory(*mount, v1_path), "memory.max_usage_in_bytes",
                   /*enable_v2=*/false)) {
        r.method = "cgroup v1 memory.max_usage_in_bytes";
        r.why.clear();
        return;
      }
    }
  } else if (r.why.empty()) {
    r.why = "no memory cgroup controller is mounted";
  }
}

CgroupRoot& cgroup_root() {
  static CgroupRoot root;
  static std::once_flag detected;
  std::call_once(detected, [] { detect(root); });
  return root;
}

std::optional<std::uint64_t> read_counter(int fd) {
  char buf[32];
  const ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  if (n <= 0) return std::nullopt;
  return parse_u64(std::string_view(buf, static_cast<std::size_t>(n)));
}

}  // namespace

MemoryGroup::Placement MemoryGroup::placement() {
  return cgroup_root().placement;
}

const std::string& MemoryGroup::method() {
  return cgroup_root().method;
}

const std::string& MemoryGroup::why_unavailable() {
  return cgroup_root().why;
}

std::unique_ptr<MemoryGroup> MemoryGroup::make() {
  const CgroupRoot& root = cgroup_root();
  if (root.base.empty()) return nullptr;
  std::unique_ptr<MemoryGroup> g(new MemoryGroup);
  std::string dir = root.base + "/" + std::to_string(g_next_group.fetch_add(1));
  if (::mkdir(dir.c_str(), 0755) != 0) return nullptr;
  g->dir_ = std::move(dir);
  auto open_file = [&g](const std::string& name, int flags) {
    return ::open((g->dir_ + "/" + name).c_str(), flags | O_CLOEXEC);
  };
  const bool by_thread = root.placement == Placement::kThread;
  g->procs_fd_ = open_file(by_thread ? "tasks" : "cgroup.procs", O_WRONLY);
  g->peak_fd_ = open_file(root.peak_file, by_thread ? O_RDWR : O_RDONLY);
  g->usage_fd_ = open_file(root.usage_file, O_RDONLY);
  if (g->procs_fd_ < 0 || g->peak_fd_ < 0 || g->usage_fd_ < 0) return nullptr;
  return g;
}

MemoryGroup::~MemoryGroup() {
  if (thread_joined_) {  // back to our own cgroup, or the group could not be removed
    const std::string tid = std::to_string(::gettid());
    write_small_file(cgroup_root().home + "/tasks", tid);
  }
  for (int fd : {procs_fd_, peak_fd_, usage_fd_}) {
    if (fd >= 0) ::close(fd);
  }
  // Fails only while a process is in it (a stray that is still dying): then it is left for
  // the next start of a program of ours to remove (remove_stale).
  if (!dir_.empty()) ::rmdir(dir_.c_str());
}

bool MemoryGroup::join_this_thread() {
  const std::string tid = std::to_string(::gettid());
  thread_joined_ = ::write(procs_fd_, tid.data(), tid.size()) == static_cast<ssize_t>(tid.size());
  return thread_joined_;
}

bool MemoryGroup::reset() {
  if (::pwrite(peak_fd_, "0", 1, 0) != 1) return false;
  const auto now = read_counter(usage_fd_);
  if (!now || *now > kMaxBaseline) return false;
  baseline_ = *now;
  return true;
}

std::optional<std::uint64_t> MemoryGroup::peak() const {
  const auto peak = read_counter(peak_fd_);
  if (!peak) return std::nullopt;
  return *peak > baseline_ ? *peak - baseline_ : 0;
}

MemoryGroup* ThreadMemoryGroup::ready() {
  if (failed_) return nullptr;
  if (group_ && group_->reset()) return group_.get();
  // None yet, or full: a fresh one (the old one is left and removed first).
  group_.reset();
  group_ = MemoryGroup::make();
  if (group_ && group_->join_this_thread() && group_->reset()) return group_.get();
  group_.reset();
  failed_ = true;
  return nullptr;
}

bool read_process_io(const std::string& pid, TaskUsage& usage) {
  const auto text = read_small_file("/proc/" + pid + "/io");
  if (!text) return false;
  parse_process_io(*text, usage);
  return usage.read_chars || usage.write_chars || usage.read_bytes || usage.write_bytes;
}

ProcessUsageMeter::~ProcessUsageMeter() {
  if (io_fd_ >= 0) ::close(io_fd_);
}

void ProcessUsageMeter::spawned(pid_t pid) {
  io_fd_ = ::open(("/proc/" + std::to_string(pid) + "/io").c_str(), O_RDONLY | O_CLOEXEC);
}

void ProcessUsageMeter::read_zombie(pid_t pid, const MemoryGroup* group) {
  usage_.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  char buf[1024];
  const ssize_t n = io_fd_ >= 0 ? ::pread(io_fd_, buf, sizeof buf, 0) : -1;
  if (n > 0)
    parse_process_io(std::string_view(buf, static_cast<std::size_t>(n)), usage_);
  else
    read_process_io(std::to_string(pid), usage_);
  if (group != nullptr) usage_.peak_memory_bytes = group->peak();
}

TaskUsage ProcessUsageMeter::finish(const struct rusage& ru, bool in_group) {
  if (!usage_.wall_seconds) {
    usage_.wall_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  }
  usage_.cpu_user_seconds = seconds(ru.ru_utime);
  usage_.cpu_system_seconds = seconds(ru.ru_stime);
  usage_.voluntary_switches = static_cast<std::uint64_t>(ru.ru_nvcsw);
  usage_.involuntary_switches = static_cast<std::uint64_t>(ru.ru_nivcsw);
  if (!in_group) usage_.peak_memory_bytes.reset();  // the group counted nothing of it
  return usage_;
}

}  // namespace asyncflow::detail
