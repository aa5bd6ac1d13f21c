#!/usr/bin/env bash
# Sets up a fresh machine, builds, and runs every test (unit, CLI, fuzz-style).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd "${SPARTA_BUILD_DIR:-build}"
ctest --output-on-failure -j2 --timeout 600
