// ProgressReporter: live progress of a long run on a terminal or in a log.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace asyncflow {

class TelemetryManager;

struct ProgressOptions {
  int fd = 2;  ///< where the progress goes (stderr)
  /// Seconds between updates; 0: 0.2 s on a terminal, 10 s otherwise (a log gets a line
  /// every 10 s, not a flood).
  double interval_seconds = 0;
  /// Whether `fd` is a terminal (then one line is rewritten in place); unset: isatty(fd).
  std::optional<bool> terminal{};
};

/// Tasks that ended and are running, as the session's events tell (blocks not counted).
struct ProgressCounts {
  std::uint64_t done = 0;
  std::uint64_t failed = 0;
  std::uint64_t canceled = 0;
  std::uint64_t running = 0;
};

/// An opt-in subscriber that shows tasks done / failed / canceled / running, the rate of
/// finished tasks and the elapsed time: one line rewritten in place on a terminal, a plain
/// line every interval otherwise, and a final line at finish(). Its own thread writes the
/// updates, so the display keeps time while no task ends.
/// Thread-safe; finish() (and the destructor) must not run on a subscriber callback.
class ProgressReporter {
 public:
  /// Subscribes to `telemetry` and starts showing. Throws asyncflow::Error for a negative or
  /// non-finite interval.
  static std::unique_ptr<ProgressReporter> attach(TelemetryManager& telemetry,
                                                  ProgressOptions options = {});
  /// finish().
  ~ProgressReporter();
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  /// Stops the updates, unsubscribes and writes the final line; later calls do nothing.
  void finish();
  ProgressCounts counts() const;
  /// The status text: "12 done, 1 failed, 0 canceled, 3 running | 4.0 tasks/s | 00:00:03".
  std::string status() const;

 private:
  struct State;
  explicit ProgressReporter(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace asyncflow
