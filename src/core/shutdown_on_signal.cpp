// ShutdownOnSignal: the handler only writes the signal's number to a pipe (all a handler may
// safely do); a thread reads it and runs the shutdown, which locks, allocates and waits.
#include "asyncflow/core/shutdown_on_signal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/core/engine.hpp"
#include "asyncflow/telemetry/log.hpp"
#include "common/exception_text.hpp"

namespace asyncflow {

namespace {

// The handler's state: plain atomics, the only things it may touch.
std::atomic<int> g_wake_fd{-1};
std::atomic<int> g_received{0};
std::atomic<bool> g_installed{false};

extern "C" void on_shutdown_signal(int sig) {
  int expected = 0;
  if (!g_received.compare_exchange_strong(expected, sig)) {
    // A second signal while shutting down: end at once, as the user asks.
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  const int saved_errno = errno;
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = ::write(g_wake_fd.load(), &byte, 1);
  errno = saved_errno;
}

std::string signal_text(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev != nullptr ? "SIG" + std::string(abbrev) : "signal " + std::to_string(sig);
}

}  // namespace

class ShutdownOnSignal::Impl {
 public:
  Impl(WorkflowEngine& engine, ShutdownOnSignalOptions options)
      : engine_(engine), options_(std::move(options)) {
    for (int sig : options_.signals) {
      if (sig == SIGKILL || sig == SIGSTOP || sig <= 0 || sig >= NSIG) {
        throw Error("ShutdownOnSignal: signal " + std::to_string(sig) + " cannot be handled");
      }
    }
    if (g_installed.exchange(true)) {
      throw Error("ShutdownOnSignal: another one is alive in this process (one at a time)");
    }
    try {
      install();
    } catch (...) {
      uninstall();
      throw;
    }
  }

  ~Impl() { uninstall(); }

  int received() const noexcept { return g_received.load(); }

  bool wait_shutdown(std::chrono::milliseconds timeout) {
    MutexLock lock(mu_);
    return done_cv_.wait_for(mu_, timeout, [this]() ASYNCFLOW_REQUIRES(mu_) { return done_; });
  }

 private:
  void install() {
    if (::pipe2(wake_, O_CLOEXEC) != 0) {
      throw Error("ShutdownOnSignal: cannot make its pipe: " +
                  std::error_code(errno, std::generic_category()).message());
    }
    g_wake_fd = wake_[1];
    g_received = 0;
    watcher_ = std::thread([this] { watch(); });
    for (int sig : options_.signals) {
      struct sigaction sa {};
      sa.sa_handler = on_shutdown_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = SA_RESTART;
      struct sigaction previous {};
      if (::sigaction(sig, &sa, &previous) != 0) {
        throw Error("ShutdownOnSignal: cannot handle " + signal_text(sig) + ": " +
                    std::error_code(errno, std::generic_category()).message());
      }
      previous_.emplace_back(sig, previous);
    }
  }

  /// Restores the previous handlers (no new signal reaches ours from here), stops the watcher
  /// unless it is shutting down (then waits for it), and frees the process-wide slot.
  void uninstall() noexcept {
    for (const auto& [sig, previous] : previous_) ::sigaction(sig, &previous, nullptr);
    previous_.clear();
    if (wake_[1] >= 0) {
      const unsigned char stop = 0;
      [[maybe_unused]] const ssize_t n = ::write(wake_[1], &stop, 1);
    }
    if (watcher_.joinable()) watcher_.join();
    for (int& fd : wake_) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
    g_wake_fd = -1;
    g_received = 0;
    g_installed = false;
  }

  void watch() {
    unsigned char byte = 0;
    for (;;) {
      const ssize_t n = ::read(wake_[0], &byte, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || byte == 0) return;  // the destructor
      break;
    }
    const int sig = byte;
    log_message(LogLevel::kWarning,
                signal_text(sig) + " received: shutting down engine '" + engine_.uid() +
                    "' (running programs are stopped, telemetry is flushed; send it again to "
                    "end at once)");
    try {
      engine_.shutdown();
    } catch (...) {
      log_message(LogLevel::kError,
                  "shutdown after " + signal_text(sig) +
                      " failed: " + detail::describe_exception(std::current_exception()).second);
    }
    {
      MutexLock lock(mu_);
      done_ = true;
    }
    done_cv_.notify_all();
    if (options_.end_process) {
      // As the signal would have ended it without us.
      ::signal(sig, SIG_DFL);
      sigset_t only;
      sigemptyset(&only);
      sigaddset(&only, sig);
      ::pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
      ::raise(sig);
    }
  }

  WorkflowEngine& engine_;
  const ShutdownOnSignalOptions options_;
  int wake_[2] = {-1, -1};
  std::vector<std::pair<int, struct sigaction>> previous_;
  std::thread watcher_;
  Mutex mu_;
  CondVar done_cv_;
  bool done_ ASYNCFLOW_GUARDED_BY(mu_) = false;
};

ShutdownOnSignal::ShutdownOnSignal(WorkflowEngine& engine, ShutdownOnSignalOptions options)
    : impl_(std::make_unique<Impl>(engine, std::move(options))) {}

ShutdownOnSignal::~ShutdownOnSignal() = default;

int ShutdownOnSignal::received() const noexcept {
  return impl_->received();
}

bool ShutdownOnSignal::wait_shutdown(std::chrono::milliseconds timeout) const {
  return impl_->wait_shutdown(timeout);
}

}  // namespace asyncflow
