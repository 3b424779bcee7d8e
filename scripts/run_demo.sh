#!/usr/bin/env bash
# The main job: set up the machine, build the examples (the demo preset: release, without
# GoogleTest or Google Benchmark) and run the telemetry demo (examples/01_workflow_grouping.cpp:
# six ML pipelines, each in a workflow scope), which writes its JSONL checkpoint to
# telemetry-output/ at the repository root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
cmake --preset demo
cmake --build --preset demo --target 00_hello_dag 01_workflow_grouping

out="$PWD/telemetry-output"
# Run inside the build tree: the engine creates its work dir (asyncflow.session.*) in the cwd.
cd build/demo/examples
echo "run_demo: 00_hello_dag"
./00_hello_dag
echo "run_demo: 01_workflow_grouping --out $out"
./01_workflow_grouping --out "$out"
