// OTLP/HTTP span and metric exporters (otlp_http_exporter.hpp): an encoder and a sender each,
// the counters, and one warning per exporter on its first failure (then only counted).
#include "asyncflow/exporters/otlp/otlp_http_exporter.hpp"

#include "asyncflow/telemetry/log.hpp"
#include "otlp_http_sender.hpp"

namespace asyncflow {

namespace detail {

/// The part both exporters share. Thread-safety: post() from one thread at a time; the
/// counters from any thread.
class OtlpChannel {
 public:
  OtlpChannel(OtlpConfig config, std::string_view signal)
      : sender_(std::move(config)),
        encoder_(sender_.config().origin),
        name_("OTLP " + std::string(signal) + " " + sender_.config().url) {}

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
    return ExportResult::kSuccess;
  }

  bool shutdown() noexcept {
    shut_.store(true, std::memory_order_release);
    sender_.shutdown();
    return true;
  }

  OtlpExportStats stats() const {
    return {requests_.load(),       failed_requests_.load(), records_sent_.load(),
            records_failed_.load(), retries_.load(),         bytes_sent_.load()};
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
};

}  // namespace detail

struct OtlpHttpSpanExporter::State {
  explicit State(OtlpConfig config) : channel(std::move(config), "traces") {}
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

const OtlpConfig& OtlpHttpSpanExporter::config() const noexcept {
  return state_->channel.config();
}

struct OtlpHttpMetricExporter::State {
  explicit State(OtlpConfig config) : channel(std::move(config), "metrics") {}
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

const OtlpConfig& OtlpHttpMetricExporter::config() const noexcept {
  return state_->channel.config();
}

}  // namespace asyncflow
