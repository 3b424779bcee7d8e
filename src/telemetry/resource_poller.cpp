// The node resource poller (resource_poller.hpp).
#include "asyncflow/telemetry/resource_poller.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <thread>

#include "asyncflow/common/error.hpp"
#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/log.hpp"
#include "asyncflow/telemetry/resource.hpp"
#include "node_sampler.hpp"
#include "nvml_gpus.hpp"

namespace asyncflow {

namespace {

using Clock = std::chrono::steady_clock;

// The first sample's CPU share needs a window: this short one, so it comes "at once".
constexpr auto kFirstWindow = std::chrono::milliseconds(100);

FieldValue field(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return std::monostate{};
  return *v;
}

}  // namespace

struct NodeResourcePoller::State {
  NodeResourcePollerOptions options;
  std::string node_id;
  std::atomic<std::uint64_t> samples{0};
  Mutex mu;
  CondVar cv;
  bool stopping ASYNCFLOW_GUARDED_BY(mu) = false;
  std::thread thread;

  /// Waits until `deadline` or stop(); false once stopping.
  bool wait_until(Clock::time_point deadline) {
    MutexLock lock(mu);
    cv.wait_until(mu, deadline, [this]() ASYNCFLOW_REQUIRES(mu) { return stopping; });
    return !stopping;
  }

  void run(TelemetryManager& manager, std::chrono::nanoseconds interval) {
    pthread_setname_np(pthread_self(), "af-resources");
    detail::NodeSampler sampler;
    const std::unique_ptr<detail::NvmlGpus> gpus = detail::NvmlGpus::open(options.nvml_library);
    Clock::time_point next = Clock::now() + kFirstWindow;
    bool said = false;
    while (wait_until(next)) {
      next += interval;
      try {
        const detail::NodeSample s = sampler.sample();
        std::vector<detail::GpuReading> readings;
        if (gpus) readings = gpus->read();
        std::optional<double> busiest;
        for (const auto& g : readings) {
          busiest = std::max(busiest.value_or(0.0), g.utilization_percent);
        }
        EventBase base{"", options.backend};
        base.node_id = node_id;
        for (const auto& g : readings) {
          EventBase device = base;
          if (g.memory_used_bytes) {
            device.attributes.emplace_back("gpu_memory_used_bytes",
                                           static_cast<std::int64_t>(*g.memory_used_bytes));
            device.attributes.emplace_back("gpu_memory_total_bytes",
                                           static_cast<std::int64_t>(*g.memory_total_bytes));
          }
          manager.emit(events::ResourceUpdate(), std::move(device),
                       {{"gpu_percent", g.utilization_percent}, {"gpu_id", std::int64_t{g.index}}});
        }
        manager.emit(events::ResourceUpdate(), std::move(base),
                     {{"cpu_percent", field(s.cpu_percent)},
                      {"memory_percent", field(s.memory_percent)},
                      {"gpu_percent", field(busiest)},
                      {"disk_read_bytes", field(s.disk_read_bytes)},
                      {"disk_write_bytes", field(s.disk_write_bytes)},
                      {"net_sent_bytes", field(s.net_sent_bytes)},
                      {"net_recv_bytes", field(s.net_recv_bytes)}});
        samples.fetch_add(1, std::memory_order_relaxed);
      } catch (const std::exception& e) {
        if (!std::exchange(said, true)) {
          log_message(LogLevel::kWarning,
                      std::string("resource poller: a sample failed (further failures are "
                                  "not said): ") +
                          e.what());
        }
      }
      // Behind by more than an interval (a stalled machine): the next one from now.
      if (next < Clock::now()) next = Clock::now() + interval;
    }
  }
};

NodeResourcePoller::NodeResourcePoller(NodeResourcePollerOptions options)
    : state_(std::make_unique<State>()) {
  state_->node_id = options.node_id.empty() ? host_name() : options.node_id;
  state_->options = std::move(options);
}

NodeResourcePoller::~NodeResourcePoller() {
  stop();
}

void NodeResourcePoller::start(TelemetryManager& manager, double interval_seconds) {
  if (!(interval_seconds > 0) || !std::isfinite(interval_seconds)) {
    throw Error("resource poller: the interval must be a positive number of seconds, got " +
                std::to_string(interval_seconds));
  }
  State& s = *state_;
  if (s.thread.joinable()) throw Error("resource poller: started twice");
  {
    MutexLock lock(s.mu);
    s.stopping = false;
  }
  const auto interval = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(interval_seconds));
  s.thread = std::thread([&s, &manager, interval] { s.run(manager, interval); });
}

void NodeResourcePoller::stop() noexcept {
  State& s = *state_;
  {
    MutexLock lock(s.mu);
    s.stopping = true;
  }
  s.cv.notify_all();
  if (s.thread.joinable()) s.thread.join();
}

std::uint64_t NodeResourcePoller::samples() const noexcept {
  return state_->samples.load(std::memory_order_relaxed);
}

const std::string& NodeResourcePoller::node_id() const noexcept {
  return state_->node_id;
}

}  // namespace asyncflow
