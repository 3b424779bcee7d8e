// Clang's thread-safety annotations (-Wthread-safety) as ASYNCFLOW_ macros, and the annotated
// Mutex, MutexLock and CondVar that make them checkable (libstdc++'s std::mutex carries no
// annotations). The clang preset builds with -Wthread-safety -Werror, so a guarded member read
// without its lock fails the build. Other compilers see plain wrappers over std::mutex.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define ASYNCFLOW_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define ASYNCFLOW_THREAD_ANNOTATION(x)
#endif

/// A class that is a lock.
#define ASYNCFLOW_CAPABILITY(name) ASYNCFLOW_THREAD_ANNOTATION(capability(name))
/// A class whose objects hold a lock for their lifetime.
#define ASYNCFLOW_SCOPED_CAPABILITY ASYNCFLOW_THREAD_ANNOTATION(scoped_lockable)
/// A member read and written only with `mu` held.
#define ASYNCFLOW_GUARDED_BY(mu) ASYNCFLOW_THREAD_ANNOTATION(guarded_by(mu))
/// A pointer member whose pointee is read and written only with `mu` held.
#define ASYNCFLOW_PT_GUARDED_BY(mu) ASYNCFLOW_THREAD_ANNOTATION(pt_guarded_by(mu))
/// A function (or lambda) called with these locks held.
#define ASYNCFLOW_REQUIRES(...) ASYNCFLOW_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
/// A function called without these locks (it takes them).
#define ASYNCFLOW_EXCLUDES(...) ASYNCFLOW_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ASYNCFLOW_ACQUIRE(...) ASYNCFLOW_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ASYNCFLOW_RELEASE(...) ASYNCFLOW_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define ASYNCFLOW_TRY_ACQUIRE(...) ASYNCFLOW_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
/// Opts a function out of the analysis; say why where it is used.
#define ASYNCFLOW_NO_THREAD_SAFETY_ANALYSIS ASYNCFLOW_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace asyncflow {

/// std::mutex with the capability annotation. Thread-safe (it is the lock).
class ASYNCFLOW_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  void lock() ASYNCFLOW_ACQUIRE() { mu_.lock(); }
  void unlock() ASYNCFLOW_RELEASE() { mu_.unlock(); }
  bool try_lock() ASYNCFLOW_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

/// Holds a Mutex for its scope (std::lock_guard); for a try, use Mutex::try_lock().
/// Not thread-safe (one thread's scope).
class ASYNCFLOW_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ASYNCFLOW_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() ASYNCFLOW_RELEASE() {
    if (owns_) mu_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  /// Lets go before the scope ends (then the lock is not held: the analysis knows).
  void unlock() ASYNCFLOW_RELEASE() {
    mu_.unlock();
    owns_ = false;
  }
  /// Takes it again after unlock().
  void lock() ASYNCFLOW_ACQUIRE() {
    mu_.lock();
    owns_ = true;
  }

 private:
  Mutex& mu_;
  bool owns_ = true;
};

/// A condition variable over a Mutex (std::condition_variable underneath). The waits require
/// the mutex held, as std::condition_variable's do; a predicate that reads guarded members says
/// so: `cv.wait(mu_, [&]() ASYNCFLOW_REQUIRES(mu_) { return ready_; });`. Thread-safe.
class CondVar {
 public:
  // The waits unlock and relock `mu` inside the standard library, where the analysis cannot
  // follow; their contract (held on entry and on return) is the annotation.
  void wait(Mutex& mu) ASYNCFLOW_REQUIRES(mu) ASYNCFLOW_NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  template <class Pred>
  void wait(Mutex& mu, Pred done) ASYNCFLOW_REQUIRES(mu) ASYNCFLOW_NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock, std::move(done));
    lock.release();
  }
  /// False when `deadline` came first (and `done()` still says no).
  template <class Clock, class Duration, class Pred>
  bool wait_until(Mutex& mu, const std::chrono::time_point<Clock, Duration>& deadline, Pred done)
      ASYNCFLOW_REQUIRES(mu) ASYNCFLOW_NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    const bool result = cv_.wait_until(lock, deadline, std::move(done));
    lock.release();
    return result;
  }
  template <class Rep, class Period, class Pred>
  bool wait_for(Mutex& mu, const std::chrono::duration<Rep, Period>& timeout, Pred done)
      ASYNCFLOW_REQUIRES(mu) ASYNCFLOW_NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    const bool result = cv_.wait_for(lock, timeout, std::move(done));
    lock.release();
    return result;
  }
  void notify_one() noexcept { cv_.notify_one(); }
  void notify_all() noexcept { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace asyncflow
