// The Prometheus endpoint's HTTP server (prometheus_exporter.hpp), over cpp-httplib.
#include "asyncflow/exporters/prometheus/prometheus_exporter.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "asyncflow/common/error.hpp"
#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/resource.hpp"

namespace asyncflow {

namespace {

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";
// Scrapes are rare (every few seconds); two threads answer them, however many clients come.
constexpr std::size_t kServerThreads = 2;

}  // namespace

struct PrometheusExporter::State {
  httplib::Server server;
  std::thread thread;
  std::string host;
  std::string path;
  int port = 0;
  Attributes resource;
  Mutex mu;
  std::shared_ptr<const MetricProducer> producer ASYNCFLOW_GUARDED_BY(mu);
  std::atomic<std::uint64_t> scrapes{0};
  std::atomic<bool> closed{false};

  void answer(httplib::Response& res) {
    std::shared_ptr<const MetricProducer> from;
    {
      MutexLock lock(mu);
      from = producer;
    }
    try {
      const MetricsSnapshot snapshot = from ? from->collect() : MetricsSnapshot{};
      res.set_content(prometheus_text(snapshot, resource), kContentType);
      scrapes.fetch_add(1, std::memory_order_relaxed);
    } catch (const std::exception& e) {
      res.status = 500;
      res.set_content(std::string("asyncflow: collecting the metrics failed: ") + e.what() + "\n",
                      "text/plain; charset=utf-8");
    }
  }
};

PrometheusExporter::PrometheusExporter(PrometheusExporterOptions options)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  const std::string where = options.host + ":" + std::to_string(options.port);
  if (options.port < 0 || options.port > 65535) {
    throw Error("Prometheus endpoint: port " + std::to_string(options.port) +
                " is outside [0, 65535]");
  }
  if (options.path.empty() || options.path.front() != '/') {
    throw Error("Prometheus endpoint: path '" + options.path + "' must start with '/'");
  }
  s.host = options.host;
  s.path = options.path;
  s.resource = resolve_resource(options.service_name, options.resource);
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which a second endpoint
  // on a taken port binds without a word and the kernel splits the scrapes between the two.
  s.server.set_socket_options([](int sock) {
    const int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  s.server.new_task_queue = [] { return new httplib::ThreadPool(kServerThreads); };
  s.server.Get(s.path, [&s](const httplib::Request&, httplib::Response& res) { s.answer(res); });
  s.server.set_error_handler([path = s.path](const httplib::Request&, httplib::Response& res) {
    if (res.status == 404) {
      res.set_content("asyncflow: the metrics are at " + path + "\n", "text/plain; charset=utf-8");
    }
  });
  errno = 0;
  if (options.port == 0) {
    s.port = s.server.bind_to_any_port(options.host);
  } else {
    s.port = s.server.bind_to_port(options.host, options.port) ? options.port : -1;
  }
  if (s.port <= 0) {
    const int err = errno;
    std::string why = err == EADDRINUSE      ? "the port is already in use"
                      : err == EADDRNOTAVAIL ? "the address is not one of this host's"
                      : err == EACCES        ? "binding there is not allowed"
                      : err != 0             ? std::strerror(err)
                                             : "the host could not be resolved or bound";
    throw Error("Prometheus endpoint: cannot listen on " + where + ": " + why);
  }
  s.thread = std::thread([&s] { s.server.listen_after_bind(); });
  // stop() is only heard once the accept loop runs: wait for it (bound, so it starts at once).
  for (int i = 0; i < 5000 && !s.server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

PrometheusExporter::~PrometheusExporter() {
  close();
}

void PrometheusExporter::attach(std::shared_ptr<const MetricProducer> producer) {
  MutexLock lock(state_->mu);
  state_->producer = std::move(producer);
}

bool PrometheusExporter::shutdown(std::chrono::microseconds /*timeout*/) noexcept {
  return true;  // the producer keeps answering with the final numbers
}

void PrometheusExporter::close() noexcept {
  State& s = *state_;
  if (s.closed.exchange(true)) return;
  s.server.stop();
  if (s.thread.joinable()) s.thread.join();
  MutexLock lock(s.mu);
  s.producer.reset();
}

int PrometheusExporter::port() const noexcept {
  return state_->port;
}

std::string PrometheusExporter::url() const {
  return "http://" + state_->host + ":" + std::to_string(state_->port) + state_->path;
}

std::uint64_t PrometheusExporter::scrapes() const noexcept {
  return state_->scrapes.load(std::memory_order_relaxed);
}

}  // namespace asyncflow
