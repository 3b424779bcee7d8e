#!/usr/bin/env bash
# Builds the fuzz preset (Clang, libFuzzer, ASan + UBSan) and runs every fuzzer of tests/fuzz
# for SECONDS each (default 600), one after the other, each on a scratch copy of its seed
# corpus under build/fuzz/fuzz-sh/ (tests/fuzz/run_fuzzer.sh). Ends with one line per fuzzer:
#   <fuzzer>: <N> executions, <K> crashes
# and exits non-zero when any fuzzer found a crash; the crashing inputs stay in
# build/fuzz/fuzz-sh/<fuzzer>/artifacts/. Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-600}
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds == 0)); then
  echo "usage: scripts/fuzz.sh [SECONDS]  (a positive whole number; default 600)" >&2
  exit 2
fi

cmake --preset fuzz
cmake --build --preset fuzz

fuzzers=(event_fuzzer checkpoint_reader_fuzzer wire_protocol_fuzzer command_fuzzer)
summary=()
found=0
for name in "${fuzzers[@]}"; do
  echo "=== fuzz.sh: ${name} for ${seconds} s"
  rc=0
  bash tests/fuzz/run_fuzzer.sh "build/fuzz/tests/fuzz/asyncflow_${name}" \
    "tests/fuzz/${name}_corpus" "build/fuzz/fuzz-sh/${name}" "$seconds" |
    tee "build/fuzz/fuzz-sh-${name}.log" || rc=$?
  line=$(grep '^fuzz: ' "build/fuzz/fuzz-sh-${name}.log" | tail -n 1 || true)
  executions=$(sed -n 's/^fuzz: [^:]*: \([^ ]*\) executions.*/\1/p' <<<"$line")
  crashes=$(sed -n 's/.* executions, \([0-9]*\) crashes.*/\1/p' <<<"$line")
  summary+=("${name}: ${executions:-?} executions, ${crashes:-?} crashes")
  if ((rc != 0)); then
    found=1
  fi
done

echo "=== fuzz.sh: ${seconds} s per fuzzer"
printf '%s\n' "${summary[@]}"
exit "$found"
