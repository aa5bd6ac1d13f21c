#!/usr/bin/env bash
# The performance targets of the kernel issue, each a ratio against oneDNN
# dense measured in the same run: M=128 K=768 N=3072, fp32, at 1 and 2
# threads. Prints a markdown table and writes out/targets.jsonl.
# Usage: scripts/targets.sh [REPS]   (after scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARTA_BUILD_DIR:-build}/tools/sparta
REPS=${1:-30}
mkdir -p out
: > out/targets.jsonl
run() {  # target-label, threshold, args...
  local label=$1 target=$2; shift 2
  for t in 1 2; do
    "$BIN" bench spmm --m 128 --k 768 --n 3072 --threads "$t" --reps "$REPS" --json "$@" |
      /usr/bin/python3 -c "import json,sys; r=json.load(sys.stdin); r['target_label']='$label'; r['target']=$target; print(json.dumps(r))" \
      >> out/targets.jsonl
  done
}
run "csr 90%"            4.0 --format csr --density 0.1
run "csr 60% (break-even)" 1.0 --format csr --density 0.4
run "bsr 32x1 90%"       7.0 --format bsr --block 32x1 --density 0.1
run "bsr 1x32 90%"       7.0 --format bsr --block 1x32 --density 0.1
run "bsr 32x1 50%"       1.7 --format bsr --block 32x1 --density 0.5
run "nm 2:4"             1.5 --format nm --nm 2:4
run "tilewise 75% G=128" 3.0 --format tilewise --tile 128 --density 0.25
/usr/bin/python3 - <<'PY'
import json
rows = [json.loads(l) for l in open("out/targets.jsonl")]
by = {}
for r in rows: by.setdefault(r["target_label"], {})[r["threads"]] = r
print("| case | target | kernel | 1 thread: sparse / dense ms | speedup | 2 threads: sparse / dense ms | speedup | eigen, libxsmm (1 thr) | met |")
print("|---|---|---|---|---|---|---|---|---|")
for label, d in by.items():
    a, b = d[1], d[2]
    peers = ", ".join(f"{a[k]:.2f}x" for k in ("eigen_speedup", "xsmm_speedup") if k in a) or "-"
    within = abs(b["speedup"] - a["speedup"]) <= 0.15 * a["speedup"]
    met = "yes" if a["speedup"] >= a["target"] else "no"
    met += "" if within else " (2-thread speedup differs >15%)"
    print(f"| {label} | >= {a['target']}x | {a['kernel']} | {a['sparse_ms']:.2f} / {a['dense_ms']:.2f} | {a['speedup']:.2f}x "
          f"| {b['sparse_ms']:.2f} / {b['dense_ms']:.2f} | {b['speedup']:.2f}x | {peers} | {met} |")
PY
