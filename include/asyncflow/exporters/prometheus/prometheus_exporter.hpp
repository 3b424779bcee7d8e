// The Prometheus pull endpoint: a metric reader that serves the session's metrics at
// http://127.0.0.1:9464/metrics in the text exposition format 0.0.4, for a Prometheus server
// to scrape. Each scrape collects from the session at that moment, so every series appears
// once per label set whatever other readers (a periodic OTLP one, ...) the session has.
//
// Names, as OTel's Prometheus compatibility rules and the reference's exporter give them:
// counters end in `_total` (tasks_completed_total), the histogram is
// task_duration_seconds_bucket{le=...}/_sum/_count, the up-down counter and the gauges are
// gauges (tasks_running, node_cpu_utilization); characters outside [a-zA-Z0-9_:] become '_'
// (attribute "service.name" → label service_name); no unit suffix is added, so names are
// the reference's. The resource is the `target_info` series.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/metrics.hpp"

namespace asyncflow {

/// Where the endpoint listens and what its target_info says.
struct PrometheusExporterOptions {
  /// The address to bind; the loopback by default, so nothing is exposed beyond this host
  /// unless asked ("0.0.0.0" for all interfaces).
  std::string host = "127.0.0.1";
  /// 9464, the port OTel's Prometheus exporters use; 0 = any free port (port() tells).
  int port = 9464;
  std::string path = "/metrics";
  /// service.name in target_info; beats OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
  std::optional<std::string> service_name{};
  /// More resource attributes for target_info (winning over OTEL_RESOURCE_ATTRIBUTES).
  Attributes resource{};
};

/// The exposition text of `snapshot` (what /metrics answers): HELP and TYPE lines per family,
/// label values escaped (backslash, double quote, newline), non-finite values as +Inf, -Inf,
/// NaN, and a target_info gauge with `resource` as its labels (none when `resource` is empty).
/// Instruments without points are left out.
std::string prometheus_text(const MetricsSnapshot& snapshot, const Attributes& resource);

/// A metric name or label name made valid: characters outside [a-zA-Z0-9_] (and ':' for metric
/// names) become '_', and a leading digit gets a '_' before it.
std::string prometheus_name(std::string_view name, bool metric_name);

/// Thread-safety: attach() and shutdown() from the thread that starts / stops the session;
/// scrapes are answered on the server's own threads; port(), url() and scrapes() from any.
class PrometheusExporter final : public MetricReader {
 public:
  /// Binds and starts serving at once (before a session is attached /metrics holds only
  /// target_info). Throws asyncflow::Error naming the address when it cannot listen there
  /// ("127.0.0.1:9464 is already in use", a bad host, a port outside [0, 65535], a path not
  /// starting with '/').
  explicit PrometheusExporter(PrometheusExporterOptions options = {});
  /// Stops the server and joins its threads.
  ~PrometheusExporter() override;

  /// Serves `producer`'s metrics from now on (a later session replaces an earlier one).
  void attach(std::shared_ptr<const MetricProducer> producer) override;
  /// The session ended: the endpoint keeps serving its final numbers, so the last scrape
  /// sees them, until close() or destruction.
  bool shutdown(std::chrono::microseconds timeout) noexcept override;
  /// Stops serving (idempotent).
  void close() noexcept;

  /// The port it listens on (the one chosen when options.port was 0).
  int port() const noexcept;
  /// "http://127.0.0.1:<port>/metrics".
  std::string url() const;
  /// Scrapes answered so far.
  std::uint64_t scrapes() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace asyncflow
