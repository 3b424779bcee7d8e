#!/usr/bin/env bash
# Telemetry-off overhead: BM_IndependentNoop and BM_IndependentThreadPool at 1M tasks in
# asyncflow_bench (engine with the observer hook, telemetry never started) against
# asyncflow_bench_no_telemetry (the same engine compiled without the hook). The two binaries
# run alternately ROUNDS times (default 15; single runs vary by ±10% on a shared machine) so machine noise hits both alike; the medians and
# their ratio are printed. Build first: cmake --build --preset release.
#   bench/compare_telemetry_off.sh [build-dir] [rounds]
set -euo pipefail
build=${1:-build/release}
rounds=${2:-15}
filter='BM_IndependentNoop/1000000|BM_IndependentThreadPool/1000000'
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((i = 0; i < rounds; ++i)); do
  for bin in asyncflow_bench asyncflow_bench_no_telemetry; do
    "$build/bench/$bin" --benchmark_filter="$filter" --benchmark_format=json \
      >"$tmp/$bin.$i.json" 2>/dev/null
  done
done
/usr/bin/python3 - "$tmp" "$rounds" <<'PY'
import json, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
rates = {}
for bin in ("asyncflow_bench", "asyncflow_bench_no_telemetry"):
    for i in range(rounds):
        for b in json.load(open(f"{tmp}/{bin}.{i}.json"))["benchmarks"]:
            name = b["name"].split("/min_time")[0].replace("/real_time", "")
            rates.setdefault((bin, name), []).append(b["tasks_per_second"])
for name in sorted({n for _, n in rates}):
    hook = statistics.median(rates[("asyncflow_bench", name)])
    bare = statistics.median(rates[("asyncflow_bench_no_telemetry", name)])
    print(f"{name}: telemetry off {hook/1e6:.3f}M tasks/s, no hook {bare/1e6:.3f}M tasks/s, "
          f"overhead {100 * (bare / hook - 1):+.2f}%  (medians of {rounds})")
PY
