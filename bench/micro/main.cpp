// Entry point of asyncflow_bench: Google Benchmark's usual main, plus two child modes: one
// workload in a fresh process (clean peak-RSS figures), and ProcessBackend's function worker
// (BM_ProcessFunction).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string_view>

#include "asyncflow/core/registered_function.hpp"
#include "bench_support.hpp"

int main(int argc, char** argv) {
  asyncflow::serve_if_worker(argc, argv);
  if (argc == 3 && std::string_view(argv[1]) == asyncflow::bench::kPeakRssChildFlag) {
    return asyncflow::bench::run_peak_rss_child(std::strtoull(argv[2], nullptr, 10));
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
