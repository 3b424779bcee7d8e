// OTLP/HTTP span and metric exporters (otlp_http_exporter.hpp): an encoder and a sender each,
// the counters, and one warning per exporter on its first failure (then only counted).
#include "asyncflow/exporters/otlp/otlp_http_exporter.hpp"

#include <algorithm>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/log.hpp"
#include "otlp_http_sender.hpp"

namespace asyncflow {

namespace detail {

/// The part both exporters share. Thread-safety: post() from one thread at a time; the
/// counters from any thread.
class OtlpChannel {
 public:
  OtlpChannel(OtlpConfig config, OtlpSignal signal)
      : signal_(signal),
        sender_(std::move(config)),
        encoder_(sender_.config().origin),
        name_(std::string(signal == OtlpSignal::kTraces ? "OTLP traces " : "OTLP metrics ") +
              sender_.config().url) {}

  /// Encodes with `encode(encoder, protocol, body)` and sends `records` records.
  template <class Encode>
  ExportResult post(std::uint64_t records, Encode&& encode) noexcept {
    if (shut_.load(std::memory_order_acquire)) return fail(records, "the exporter was shut down");
    try {
      encode(encoder_, sender_.config().protocol, body_);
    } catch (const std::exception& e) {
      return fail(records, std::string("encoding failed: ") + e.what());
    }
    const SendOutcome r = sender_.send(body_);
    retries_.fetch_add(static_cast<std::uint64_t>(std::max(0, r.attempts - 1)),
                       std::memory_order_relaxed);
    if (!r.ok) return fail(records, r.error);
    requests_.fetch_add(1, std::memory_order_relaxed);
    records_sent_.fetch_add(records, std::memory_order_relaxed);
    bytes_sent_.fetch_add(body_.size(), std::memory_order_relaxed);
    note_partial_success(r.body, records);
    return ExportResult::kSuccess;
  }

  ExporterLosses losses() const {
    ExporterLosses l;
    l.records = records_rejected_.load(std::memory_order_relaxed);
    if (l.records != 0) {
      MutexLock lock(mu_);
      l.last_error = last_rejection_;
    }
    return l;
  }

  bool shutdown() noexcept {
    shut_.store(true, std::memory_order_release);
    sender_.shutdown();
    return true;
  }

  OtlpExportStats stats() const {
    return {requests_.load(),        failed_requests_.load(), records_sent_.load(),
            records_failed_.load(),  retries_.load(),         bytes_sent_.load(),
            records_rejected_.load()};
  }
  const std::string& name() const noexcept { return name_; }
  const OtlpConfig& config() const noexcept { return sender_.config(); }

 private:
  ExportResult fail(std::uint64_t records, const std::string& why) noexcept {
    failed_requests_.fetch_add(1, std::memory_order_relaxed);
    records_failed_.fetch_add(records, std::memory_order_relaxed);
    if (!warned_.exchange(true)) {
      try {
        log_message(LogLevel::kWarning,
                    name_ + ": export failed: " + why + " (further failures are only counted)");
      } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the counts still tell
      }
    }
    return ExportResult::kFailure;
  }

  /// A success that rejected part of the request: counted (capped at what was sent) and said
  /// once with the receiver's reason.
  void note_partial_success(const std::string& body, std::uint64_t records) noexcept {
    try {
      const std::optional<OtlpPartialSuccess> p =
          signal_ == OtlpSignal::kTraces ? read_trace_response(body, sender_.config().protocol)
                                         : read_metrics_response(body, sender_.config().protocol);
      if (!p || p->rejected <= 0) return;  // a message alone is a warning the receiver keeps
      const auto rejected =
          std::min<std::uint64_t>(static_cast<std::uint64_t>(p->rejected), records);
      records_rejected_.fetch_add(rejected, std::memory_order_relaxed);
      std::string why = name_ + ": the receiver rejected " + std::to_string(rejected) + " of " +
                        std::to_string(records) +
                        (signal_ == OtlpSignal::kTraces ? " spans" : " data points") +
                        (p->error_message.empty() ? "" : ": " + p->error_message.substr(0, 200));
      {
        MutexLock lock(mu_);
        last_rejection_ = why;
      }
      if (!warned_rejection_.exchange(true)) {
        log_message(LogLevel::kWarning, why + " (further rejections are only counted)");
      }
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; nothing to count
    }
  }

  const OtlpSignal signal_;
  OtlpHttpSender sender_;
  OtlpEncoder encoder_;
  const std::string name_;
  std::string body_;
  std::atomic<bool> shut_{false};
  std::atomic<bool> warned_{false};
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> failed_requests_{0};
  std::atomic<std::uint64_t> records_sent_{0};
  std::atomic<std::uint64_t> records_failed_{0};
  std::atomic<std::uint64_t> retries_{0};
  std::atomic<std::uint64_t> bytes_sent_{0};
  std::atomic<std::uint64_t> records_rejected_{0};
  std::atomic<bool> warned_rejection_{false};
  mutable Mutex mu_;
  std::string last_rejection_ ASYNCFLOW_GUARDED_BY(mu_);
};

}  // namespace detail

struct OtlpHttpSpanExporter::State {
  explicit State(OtlpConfig config) : channel(std::move(config), OtlpSignal::kTraces) {}
  detail::OtlpChannel channel;
};

OtlpHttpSpanExporter::OtlpHttpSpanExporter(const OtlpExporterOptions& options)
    : OtlpHttpSpanExporter(resolve_otlp_config(OtlpSignal::kTraces, options)) {}

OtlpHttpSpanExporter::OtlpHttpSpanExporter(OtlpConfig config)
    : state_(std::make_unique<State>(std::move(config))) {}

OtlpHttpSpanExporter::~OtlpHttpSpanExporter() = default;

std::string OtlpHttpSpanExporter::name() const {
  return state_->channel.name();
}

ExportResult OtlpHttpSpanExporter::export_spans(std::span<const SpanRecord> batch) noexcept {
  // The batch span processor's records hold full spans: encoded in place, not copied again.
  if (batch.empty()) return ExportResult::kSuccess;
  return state_->channel.post(batch.size(), [&](OtlpEncoder& e, OtlpProtocol p, std::string& out) {
    e.encode_traces(batch, p, out);
  });
}

ExportResult OtlpHttpSpanExporter::export_span_data(std::span<const SpanData> batch) noexcept {
  if (batch.empty()) return ExportResult::kSuccess;
  return state_->channel.post(batch.size(), [&](OtlpEncoder& e, OtlpProtocol p, std::string& out) {
    e.encode_traces(batch, p, out);
  });
}

bool OtlpHttpSpanExporter::shutdown(std::chrono::microseconds) noexcept {
  return state_->channel.shutdown();
}

OtlpExportStats OtlpHttpSpanExporter::stats() const {
  return state_->channel.stats();
}

ExporterLosses OtlpHttpSpanExporter::losses() const {
  return state_->channel.losses();
}

const OtlpConfig& OtlpHttpSpanExporter::config() const noexcept {
  return state_->channel.config();
}

struct OtlpHttpMetricExporter::State {
  explicit State(OtlpConfig config) : channel(std::move(config), OtlpSignal::kMetrics) {}
  detail::OtlpChannel channel;
};

OtlpHttpMetricExporter::OtlpHttpMetricExporter(const OtlpExporterOptions& options)
    : OtlpHttpMetricExporter(resolve_otlp_config(OtlpSignal::kMetrics, options)) {}

OtlpHttpMetricExporter::OtlpHttpMetricExporter(OtlpConfig config)
    : state_(std::make_unique<State>(std::move(config))) {}

OtlpHttpMetricExporter::~OtlpHttpMetricExporter() = default;

std::string OtlpHttpMetricExporter::name() const {
  return state_->channel.name();
}

ExportResult OtlpHttpMetricExporter::export_metrics(const MetricsSnapshot& snapshot) noexcept {
  std::uint64_t points = 0;
  for (const MetricData& m : snapshot.metrics) points += m.points.size();
  return state_->channel.post(points, [&](OtlpEncoder& e, OtlpProtocol p, std::string& out) {
    e.encode_metrics(snapshot, p, out);
  });
}

bool OtlpHttpMetricExporter::shutdown(std::chrono::microseconds) noexcept {
  return state_->channel.shutdown();
}

OtlpExportStats OtlpHttpMetricExporter::stats() const {
  return state_->channel.stats();
}

ExporterLosses OtlpHttpMetricExporter::losses() const {
  return state_->channel.losses();
}

const OtlpConfig& OtlpHttpMetricExporter::config() const noexcept {
  return state_->channel.config();
}

}  // namespace asyncflow
