#!/usr/bin/env bash
# The whole test suite: set up the machine, then configure, build and test the release, asan,
# tsan, clang (-Wthread-safety: lock annotations checked) and fuzz (each libFuzzer fuzzer for
# 20 s; scripts/fuzz.sh runs them longer) presets in turn. Stops at the first failing step with
# a non-zero exit.
#
# The last line printed is always the CI summary "N passed, N failed", summed over the ctest
# runs so far. A configure or build step that fails counts as one failure, so a broken build
# never reads as "0 failed".
#
# ASYNCFLOW_TEST_PRESETS="release" (space-separated) runs a subset.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec 2>&1  # one ordered stream, so the summary really is the last line

read -r -a presets <<<"${ASYNCFLOW_TEST_PRESETS:-release asan tsan clang fuzz}"
passed=0
failed=0
summary() { echo "${passed} passed, ${failed} failed"; }
trap summary EXIT

step() {  # step DESCRIPTION COMMAND...: runs the command; a failure counts once and stops.
  local what=$1
  shift
  echo "=== test.sh: ${what}"
  local start=$SECONDS rc=0
  "$@" || rc=$?
  if ((rc != 0)); then
    echo "=== test.sh: FAILED (exit ${rc}): ${what}"
    failed=$((failed + 1))
    exit "$rc"
  fi
  echo "=== test.sh: ${what}: ok ($((SECONDS - start)) s)"
}

step "setup" bash scripts/setup.sh

for preset in "${presets[@]}"; do
  step "configure ${preset}" cmake --preset "$preset"
  step "build ${preset}" cmake --build --preset "$preset"

  echo "=== test.sh: ctest ${preset}"
  log="build/${preset}/test-sh-ctest.log"
  start=$SECONDS
  rc=0
  ctest --preset "$preset" -j2 --no-tests=error 2>&1 | tee "$log" || rc=$?
  # ctest ends with "X% tests passed, Y tests failed out of Z" (also "1 test failed").
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    failed=$((failed + BASH_REMATCH[1]))
    passed=$((passed + BASH_REMATCH[2] - BASH_REMATCH[1]))
  elif ((rc == 0)); then
    rc=1  # passed but printed no summary: do not trust it
  fi
  if ((rc != 0)); then
    [[ -n $line ]] || failed=$((failed + 1))  # ctest itself broke (no tests, bad preset, ...)
    echo "=== test.sh: FAILED (exit ${rc}): ctest ${preset}"
    exit "$rc"
  fi
  echo "=== test.sh: ctest ${preset}: ok ($((SECONDS - start)) s)"
done
