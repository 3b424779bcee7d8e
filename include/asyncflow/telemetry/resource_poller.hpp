// The node resource poller: a ResourceAdapter that samples this node's CPU, memory, disk and
// network use from /proc and /sys (no dependency) and emits one ResourceUpdate per sample, with
// the reference's fields (rhapsody-telemetry.md §1.4, §5): cpu_percent and memory_percent of
// the whole node, disk and network byte deltas since the previous sample (never negative: a
// counter that reset gives 0), node_id = the host name, resource_scope "per_node". With NVIDIA
// GPUs (NVML, loaded at run time), also one "per_gpu" event per device (gpu_percent, gpu_id,
// and the attributes gpu_memory_used_bytes / gpu_memory_total_bytes, which the reference
// collects and throws away), and the node's gpu_percent = the busiest device's.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "asyncflow/telemetry/manager.hpp"

namespace asyncflow {

struct NodeResourcePollerOptions {
  /// The events' backend field (the summary keys resources "<backend>/<node_id>").
  std::string backend = "asyncflow";
  /// Empty: the host name (gethostname), as the reference.
  std::string node_id{};
  /// NVIDIA's management library, loaded at run time; absent = no GPU fields, no message.
  std::string nvml_library = "libnvidia-ml.so.1";
};

/// Thread-safety: start() and stop() from the thread that starts / stops the session (the
/// manager); samples() and node_id() from any thread.
class NodeResourcePoller final : public ResourceAdapter {
 public:
  explicit NodeResourcePoller(NodeResourcePollerOptions options = {});
  ~NodeResourcePoller() override;

  /// Starts the poller's thread ("af-resources"): the first sample comes at once (its CPU
  /// share measured over the first 100 ms), then one every `interval_seconds`. Throws
  /// asyncflow::Error for an interval that is not positive, or when started twice.
  void start(TelemetryManager& manager, double interval_seconds) override;
  /// Stops and joins the thread; idempotent.
  void stop() noexcept override;

  /// ResourceUpdate events emitted so far.
  std::uint64_t samples() const noexcept;
  const std::string& node_id() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace asyncflow
