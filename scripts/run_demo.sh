#!/usr/bin/env bash
# The main job: set up the machine, build the release preset's hello-DAG example and run it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
cmake --preset release
cmake --build --preset release --target 00_hello_dag

# Run inside the build tree: the engine creates its work dir (asyncflow.session.*) in the cwd.
echo "run_demo: build/release/examples/00_hello_dag"
cd build/release/examples
./00_hello_dag
