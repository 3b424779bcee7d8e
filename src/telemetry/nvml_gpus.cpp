// NVML through dlopen (nvml_gpus.hpp). The few declarations below are NVML's documented C
// ABI for the calls we make (return code 0 = NVML_SUCCESS; devices are opaque handles).
#include "nvml_gpus.hpp"

#include <dlfcn.h>

#include "asyncflow/telemetry/log.hpp"

namespace asyncflow::detail {

namespace {

using NvmlReturn = int;
using NvmlDevice = void*;
struct NvmlUtilization {
  unsigned int gpu;
  unsigned int memory;
};
struct NvmlMemory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

void warn(const std::string& message) {
  log_message(LogLevel::kWarning, "resource poller: " + message);
}

}  // namespace

struct NvmlGpus::Api {
  void* handle = nullptr;
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  NvmlReturn (*count)(unsigned int*) = nullptr;
  NvmlReturn (*by_index)(unsigned int, NvmlDevice*) = nullptr;
  NvmlReturn (*utilization)(NvmlDevice, NvmlUtilization*) = nullptr;
  NvmlReturn (*memory)(NvmlDevice, NvmlMemory*) = nullptr;
  const char* (*error_string)(NvmlReturn) = nullptr;

  ~Api() {
    if (handle != nullptr) ::dlclose(handle);
  }
  std::string error(NvmlReturn r) const {
    const char* s = error_string != nullptr ? error_string(r) : nullptr;
    return s != nullptr ? std::string(s) : "NVML error " + std::to_string(r);
  }
  template <class F>
  bool bind(F& f, const char* name, const char* fallback = nullptr) {
    void* p = ::dlsym(handle, name);
    if (p == nullptr && fallback != nullptr) p = ::dlsym(handle, fallback);
    f = reinterpret_cast<F>(p);  // NOLINT: dlsym returns the C function
    return p != nullptr;
  }
};

std::unique_ptr<NvmlGpus> NvmlGpus::open(const std::string& library) {
  auto api = std::make_unique<Api>();
  api->handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (api->handle == nullptr) return nullptr;  // no NVIDIA driver here: no GPUs, no message
  api->bind(api->error_string, "nvmlErrorString");
  if (!api->bind(api->init, "nvmlInit_v2", "nvmlInit") ||
      !api->bind(api->shutdown, "nvmlShutdown") ||
      !api->bind(api->count, "nvmlDeviceGetCount_v2", "nvmlDeviceGetCount") ||
      !api->bind(api->by_index, "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex") ||
      !api->bind(api->utilization, "nvmlDeviceGetUtilizationRates")) {
    warn(library + " lacks the NVML functions it needs; GPUs are not sampled");
    return nullptr;
  }
  api->bind(api->memory, "nvmlDeviceGetMemoryInfo");  // optional: memory fields then absent
  if (const NvmlReturn r = api->init(); r != 0) {
    warn("nvmlInit failed (" + api->error(r) + "); GPUs are not sampled");
    return nullptr;
  }
  unsigned int count = 0;
  if (const NvmlReturn r = api->count(&count); r != 0) {
    warn("nvmlDeviceGetCount failed (" + api->error(r) + "); GPUs are not sampled");
    api->shutdown();
    return nullptr;
  }
  return std::unique_ptr<NvmlGpus>(new NvmlGpus(std::move(api), count));
}

NvmlGpus::NvmlGpus(std::unique_ptr<Api> api, unsigned count)
    : api_(std::move(api)), working_(count, true) {}

NvmlGpus::~NvmlGpus() {
  api_->shutdown();
}

std::size_t NvmlGpus::devices_working() const noexcept {
  std::size_t n = 0;
  for (const bool w : working_) n += w;
  return n;
}

std::vector<GpuReading> NvmlGpus::read() {
  std::vector<GpuReading> out;
  for (unsigned i = 0; i < working_.size(); ++i) {
    if (!working_[i]) continue;
    NvmlDevice device = nullptr;
    NvmlUtilization u{};
    NvmlReturn r = api_->by_index(i, &device);
    if (r == 0) r = api_->utilization(device, &u);
    if (r != 0) {
      // Said once: the device is left out from now on, the others go on.
      working_[i] = false;
      warn("GPU " + std::to_string(i) + " failed (" + api_->error(r) +
           "); it is no longer sampled");
      continue;
    }
    GpuReading g;
    g.index = static_cast<int>(i);
    g.utilization_percent = u.gpu;
    NvmlMemory m{};
    if (api_->memory != nullptr && api_->memory(device, &m) == 0) {
      g.memory_used_bytes = m.used;
      g.memory_total_bytes = m.total;
    }
    out.push_back(g);
  }
  return out;
}

}  // namespace asyncflow::detail
