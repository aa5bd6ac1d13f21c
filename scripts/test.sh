#!/usr/bin/env bash
# Sets up a fresh machine, builds, and runs every test (unit, CLI, fuzz-style).
# One line per step with its time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
t0=$(date +%s)
scripts/build.sh
echo "test: build done in $(( $(date +%s) - t0 )) s"
cd "${SPARTA_BUILD_DIR:-build}"
ctest --output-on-failure -j2 --timeout 600
