#!/usr/bin/env bash
# Sets up a fresh machine, builds, and runs the kernel benchmark sweep: every
# format over densities 0.5..0.05 on the BERT-base linear shapes, against
# oneDNN dense, Eigen and LIBXSMM in the same run. Prints the table and
# writes out/sweep/sweep.{md,json,png}. Extra arguments go to the sweep
# (e.g. --threads 2, --reps 10).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
t0=$(date +%s)
scripts/build.sh
echo "demo: build done in $(( $(date +%s) - t0 )) s"
"${SPARTA_BUILD_DIR:-build}"/tools/sparta bench spmm --sweep --out-dir out/sweep "$@"
