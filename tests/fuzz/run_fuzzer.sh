#!/usr/bin/env bash
# Runs one libFuzzer fuzzer for SECONDS on a scratch copy of its seed corpus in WORKDIR, so the
# checked-in corpus is never modified, and ends with one summary line:
#   fuzz: <fuzzer>: <N> executions, <K> crashes (inputs in WORKDIR/artifacts)
# Exits non-zero when the fuzzer found a crash, leak, timeout or out-of-memory input.
# Usage: run_fuzzer.sh FUZZER SEED_DIR WORKDIR SECONDS
set -euo pipefail
fuzzer=$1
seeds=$2
work=$3
seconds=$4
name=$(basename "$fuzzer")

rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp -R "$seeds/." "$work/corpus/"

rc=0
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" 2>&1 | tee "$work/fuzzer.log" || rc=$?

executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzzer.log" | tail -n 1)
crashes=$(find "$work/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
  -o -name 'oom-*' \) | wc -l)
echo "fuzz: ${name}: ${executions:-?} executions, ${crashes} crashes (inputs in $work/artifacts)"
if ((rc != 0 || crashes != 0)); then
  exit 1
fi
