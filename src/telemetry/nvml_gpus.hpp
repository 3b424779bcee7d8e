// Internal: this node's NVIDIA GPUs through NVML, loaded at run time with dlopen (no build
// dependency). The library absent: no GPUs and no message. nvmlInit failing: one warning, no
// GPUs. A device whose query fails: one warning, and that device is left out from then on;
// the others go on.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace asyncflow::detail {

/// One device's reading.
struct GpuReading {
  int index = 0;
  double utilization_percent = 0;  ///< % of time a kernel ran (NVML's utilization.gpu)
  std::optional<std::uint64_t> memory_used_bytes, memory_total_bytes;
};

/// Not thread-safe (the poller's thread owns it).
class NvmlGpus {
 public:
  /// The GPUs of `library` ("libnvidia-ml.so.1"), or null when there are none to read.
  static std::unique_ptr<NvmlGpus> open(const std::string& library);
  ~NvmlGpus();
  NvmlGpus(const NvmlGpus&) = delete;
  NvmlGpus& operator=(const NvmlGpus&) = delete;

  /// A reading of each device still working.
  std::vector<GpuReading> read();
  std::size_t devices_working() const noexcept;

 private:
  struct Api;
  explicit NvmlGpus(std::unique_ptr<Api> api, unsigned count);
  std::unique_ptr<Api> api_;
  std::vector<bool> working_;
};

}  // namespace asyncflow::detail
