// A stand-in for libnvidia-ml.so, built by the tests, for the resource poller's GPU path. Its
// behaviour comes from FAKE_NVML:
//   "two"           two devices (30 % and 70 % busy, 1 of 16 GiB used)
//   "init_fails"    nvmlInit_v2 fails
//   "device1_fails" two devices; device 1's utilization query fails
//   "disappears"    two devices; device 1 fails from its third query on (lost from the bus)
#include <cstdlib>
#include <cstring>

namespace {

struct Utilization {
  unsigned int gpu;
  unsigned int memory;
};
struct Memory {
  unsigned long long total, free, used;
};

const char* mode() {
  const char* m = std::getenv("FAKE_NVML");
  return m != nullptr ? m : "two";
}
bool is(const char* m) {
  return std::strcmp(mode(), m) == 0;
}

int g_device_ids[2] = {0, 1};
int g_device1_queries = 0;

}  // namespace

extern "C" {

int nvmlInit_v2() {
  return is("init_fails") ? 9 /* driver not loaded */ : 0;
}
int nvmlShutdown() {
  return 0;
}
const char* nvmlErrorString(int r) {
  return r == 9 ? "Driver Not Loaded" : "GPU is lost";
}
int nvmlDeviceGetCount_v2(unsigned int* count) {
  *count = 2;
  return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void** device) {
  if (index > 1) return 2;  // invalid argument
  *device = &g_device_ids[index];
  return 0;
}
int nvmlDeviceGetUtilizationRates(void* device, Utilization* u) {
  const int id = *static_cast<int*>(device);
  if (id == 1) {
    ++g_device1_queries;
    if (is("device1_fails") || (is("disappears") && g_device1_queries >= 3)) return 15;
  }
  u->gpu = id == 0 ? 30 : 70;
  u->memory = 10;
  return 0;
}
int nvmlDeviceGetMemoryInfo(void* device, Memory* m) {
  (void)device;
  m->total = 16ULL << 30;
  m->used = 1ULL << 30;
  m->free = m->total - m->used;
  return 0;
}

}  // extern "C"
