// Loss counters and their messages (losses.hpp).
#include "losses.hpp"

#include <sstream>

#include "asyncflow/telemetry/log.hpp"

namespace asyncflow::detail {

/// "1 event", "3 events".
std::string count(std::uint64_t n, std::string_view what) {
  std::string s = std::to_string(n);
  s.append(" ").append(what);
  if (n != 1) s.append("s");
  return s;
}

std::string seconds_text(double seconds) {
  std::ostringstream out;
  out << seconds << " s";
  return out.str();
}

void LossCounters::warn_once(std::atomic<bool>& said, std::string_view message) noexcept {
  if (said.exchange(true, std::memory_order_relaxed)) return;
  log_message(LogLevel::kWarning, message);
}

void LossCounters::set_last_error(std::string message) {
  MutexLock lock(mu_);
  last_error_ = std::move(message);
}

void LossCounters::dropped(std::uint64_t n, std::string_view why) noexcept {
  events_dropped_.fetch_add(n, std::memory_order_relaxed);
  try {
    std::string message = "session " + session_id_ + ": events dropped: " + std::string(why) +
                          " (further drops are only counted; summary() and stop() report them)";
    if (!said_dropped_.load(std::memory_order_relaxed)) set_last_error(message);
    warn_once(said_dropped_, message);
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the count still tells
  }
}

void LossCounters::emitted_after_stop(std::string_view event_type) noexcept {
  events_dropped_.fetch_add(1, std::memory_order_relaxed);
  try {
    warn_once(said_after_stop_, "session " + session_id_ + ": a " + std::string(event_type) +
                                    " event emitted after the session stopped was dropped "
                                    "(further ones are only counted)");
  } catch (...) {  // NOLINT(bugprone-empty-catch)
  }
}

void LossCounters::undelivered(std::uint64_t n, std::string_view why) noexcept {
  if (n == 0) return;
  events_undelivered_.fetch_add(n, std::memory_order_relaxed);
  try {
    std::string message = "session " + session_id_ + ": " + count(n, "event") +
                          " not delivered to subscribers: " + std::string(why);
    set_last_error(message);
    warn_once(said_undelivered_, message);
  } catch (...) {  // NOLINT(bugprone-empty-catch)
  }
}

void LossCounters::exporter_problem(std::string_view exporter, std::string message) {
  bool first = false;
  {
    MutexLock lock(mu_);
    last_error_ = message;
    const std::string key = std::string(exporter) + "\n";
    if (exporters_warned_.find(key) == std::string::npos) {
      exporters_warned_ += key;
      first = true;
    }
  }
  if (first) log_message(LogLevel::kWarning, message + " (further failures are only counted)");
}

void LossCounters::export_failed(std::string_view exporter, ExportResult result,
                                 std::uint64_t records, std::string_view what) noexcept {
  export_failures_.fetch_add(1, std::memory_order_relaxed);
  records_not_exported_.fetch_add(records, std::memory_order_relaxed);
  try {
    exporter_problem(exporter, "session " + session_id_ + ": exporter " + std::string(exporter) +
                                   " failed (" + std::string(to_string(result)) +
                                   "): " + count(records, what) + " not exported");
  } catch (...) {  // NOLINT(bugprone-empty-catch)
  }
}

void LossCounters::not_exported(std::string_view exporter, std::uint64_t records,
                                std::string_view what, std::string_view why,
                                bool failed_call) noexcept {
  if (failed_call) export_failures_.fetch_add(1, std::memory_order_relaxed);
  records_not_exported_.fetch_add(records, std::memory_order_relaxed);
  try {
    exporter_problem(exporter, "session " + session_id_ + ": " + count(records, what) +
                                   " not exported to " + std::string(exporter) + ": " +
                                   std::string(why));
  } catch (...) {  // NOLINT(bugprone-empty-catch)
  }
}

void LossCounters::exporter_lost(std::string_view exporter, const ExporterLosses& losses) noexcept {
  if (losses.records == 0) return;
  records_not_exported_.fetch_add(losses.records, std::memory_order_relaxed);
  try {
    set_last_error("exporter " + std::string(exporter) + " lost " +
                   count(losses.records, "record") + ": " + losses.last_error);
  } catch (...) {  // NOLINT(bugprone-empty-catch)
  }
}

void LossCounters::note_error(std::string_view message) noexcept {
  try {
    set_last_error(std::string(message));
    log_message(LogLevel::kWarning, "session " + session_id_ + ": " + std::string(message));
  } catch (...) {  // NOLINT(bugprone-empty-catch)
  }
}

TelemetryLosses LossCounters::snapshot() const {
  TelemetryLosses l;
  l.events_dropped = events_dropped_.load(std::memory_order_relaxed);
  l.events_undelivered = events_undelivered_.load(std::memory_order_relaxed);
  l.subscriber_errors = subscriber_errors_.load(std::memory_order_relaxed);
  l.export_failures = export_failures_.load(std::memory_order_relaxed);
  l.records_not_exported = records_not_exported_.load(std::memory_order_relaxed);
  MutexLock lock(mu_);
  l.last_error = last_error_;
  return l;
}

}  // namespace asyncflow::detail

namespace asyncflow {

bool TelemetryLosses::lost_data() const noexcept {
  return events_dropped != 0 || events_undelivered != 0 || records_not_exported != 0;
}

std::string TelemetryLosses::to_string() const {
  std::string out;
  auto add = [&](std::uint64_t n, std::string_view noun, std::string_view rest) {
    if (n == 0) return;
    if (!out.empty()) out += ", ";
    out += detail::count(n, noun);
    out += rest;
  };
  add(events_dropped, "event", " dropped");
  add(events_undelivered, "event", " not delivered to subscribers");
  add(records_not_exported, "record", " not exported");
  add(export_failures, "failed export", "");
  add(subscriber_errors, "subscriber error", "");
  if (out.empty()) return "nothing lost";
  if (!last_error.empty()) out += " (last: " + last_error + ")";
  return out;
}

}  // namespace asyncflow
