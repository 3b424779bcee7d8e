// Exporters that misbehave on purpose, for the fault-injection suite (tests/fault/): one that
// fails every N-th export call, one that stalls on a gate the test opens, and one whose code
// throws. The export interface is noexcept (exporter.hpp): a throw from an export call ends
// the program (std::terminate) before the pipeline sees it, so ThrowingExporter throws from
// export only for a death test; its other modes throw from the methods that may (name(),
// losses()).
#pragma once

#include <asyncflow/telemetry/exporter.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "support/sync.hpp"

namespace asyncflow::testing {

/// Takes every signal, and fails every `every`-th export call (events, spans and metric
/// snapshots counted together) with kFailure, as an exporter whose collector drops a request
/// now and then. Counts what it took and what it refused. Thread-safe.
class FlakyExporter final : public EventExporter, public SpanExporter, public MetricExporter {
 public:
  explicit FlakyExporter(int every) : every_(every) {}
  std::string name() const override { return "flaky"; }
  ExportResult export_events(std::span<const Event> batch) noexcept override {
    return take(batch.size());
  }
  ExportResult export_spans(std::span<const SpanRecord> batch) noexcept override {
    return take(batch.size());
  }
  ExportResult export_metrics(const MetricsSnapshot&) noexcept override { return take(1); }
  bool force_flush(std::chrono::microseconds) noexcept override { return true; }
  bool shutdown(std::chrono::microseconds) noexcept override { return true; }

  std::uint64_t calls() const { return calls_.load(); }
  std::uint64_t failed_calls() const { return failed_calls_.load(); }
  std::uint64_t taken_records() const { return taken_.load(); }
  std::uint64_t refused_records() const { return refused_.load(); }

 private:
  ExportResult take(std::size_t records) noexcept {
    if (++calls_ % static_cast<std::uint64_t>(every_) == 0) {
      ++failed_calls_;
      refused_ += records;
      return ExportResult::kFailure;
    }
    taken_ += records;
    return ExportResult::kSuccess;
  }

  const int every_;
  std::atomic<std::uint64_t> calls_{0};
  std::atomic<std::uint64_t> failed_calls_{0};
  std::atomic<std::uint64_t> taken_{0};
  std::atomic<std::uint64_t> refused_{0};
};

/// Takes events; its first export_events() call opens `entered` and waits for `release` (a
/// collector that stopped answering), so the dispatcher stands still until the test opens it,
/// then opens `returned` as that call ends. Counts the events it took. Opens `destroyed` (held
/// apart, as the exporter may be released on the telemetry thread after the test dropped it)
/// in its destructor. Thread-safe.
class StalledExporter final : public EventExporter {
 public:
  ~StalledExporter() override { destroyed->open(); }
  std::string name() const override { return "stalled"; }
  ExportResult export_events(std::span<const Event> batch) noexcept override {
    if (!stalled_.exchange(true)) {
      entered.open();
      release.wait();
      events_ += batch.size();
      returned.open();
      return ExportResult::kSuccess;
    }
    events_ += batch.size();
    return ExportResult::kSuccess;
  }
  bool force_flush(std::chrono::microseconds) noexcept override { return true; }
  bool shutdown(std::chrono::microseconds) noexcept override { return true; }
  std::uint64_t events() const { return events_.load(); }

  Gate entered;
  Gate release;
  Gate returned;
  std::shared_ptr<Gate> destroyed = std::make_shared<Gate>();

 private:
  std::atomic<bool> stalled_{false};
  std::atomic<std::uint64_t> events_{0};
};

/// Where a ThrowingExporter throws.
enum class ThrowFrom {
  kExport,  ///< export_events(): noexcept, so the program ends (std::terminate)
  kName,    ///< name(), which the session calls when it starts
  kLosses,  ///< losses(), which the session calls when it stops
};

/// Throws std::runtime_error("exporter bug") from one method. Thread-safe.
class ThrowingExporter final : public EventExporter {
 public:
  explicit ThrowingExporter(ThrowFrom where) : where_(where) {}
  std::string name() const override {
    if (where_ == ThrowFrom::kName) fail();
    return "throwing";
  }
  ExportResult export_events(std::span<const Event> batch) noexcept override {
    // Through a call, not a throw expression here: the compiler rejects (-Werror=terminate)
    // a throw written directly in a noexcept function, which is the point being tested.
    if (where_ == ThrowFrom::kExport && !batch.empty()) fail();
    return ExportResult::kSuccess;
  }
  bool force_flush(std::chrono::microseconds) noexcept override { return true; }
  bool shutdown(std::chrono::microseconds) noexcept override { return true; }
  ExporterLosses losses() const override {
    if (where_ == ThrowFrom::kLosses) fail();
    return {};
  }

 private:
  [[noreturn]] static void fail() { throw std::runtime_error("exporter bug"); }
  const ThrowFrom where_;
};

}  // namespace asyncflow::testing
