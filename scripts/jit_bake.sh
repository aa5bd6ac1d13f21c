#!/usr/bin/env bash
# Where baking a weight's pattern into straight-line code stops paying: the
# generated CSR kernel with its offsets and values as displacements
# (SPARTA_JIT_BAKE=always) against the same kernel reading compact tables
# (never), over weight sizes, at M=128, 1 and 2 threads. Prints a markdown
# table and writes out/jit_bake.jsonl. The default (auto) bakes below
# jit::kBakeBudgetBytes of code.
# Usage: scripts/jit_bake.sh [REPS] [DENSITY]   (after scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARTA_BUILD_DIR:-build}/tools/sparta
REPS=${1:-30}
DENSITY=${2:-0.1}
ISA=$(/usr/bin/python3 -c "import sys; print('avx512' if 'avx512f' in open('/proc/cpuinfo').read() and '${SPARTA_ISA:-}' != 'avx2' else 'avx2')")
mkdir -p out
: > out/jit_bake.jsonl
for size in 64x64 128x128 256x256 512x512 768x768 3072x768; do
  n=${size%x*} k=${size#*x}
  for t in 1 2; do for mode in always never; do
    SPARTA_JIT_BAKE=$mode "$BIN" bench spmm --format csr --density "$DENSITY" --m 128 --n "$n" --k "$k" \
      --threads "$t" --reps "$REPS" --kernel "jit_csr_$ISA" --no-peers --json |
      /usr/bin/python3 -c "import json,sys; r=json.load(sys.stdin); r['bake']='$mode'; r['size']='$size'; print(json.dumps(r))" \
      >> out/jit_bake.jsonl
  done; done
done
/usr/bin/python3 - "$DENSITY" <<'PY'
import json, sys
rows = [json.loads(l) for l in open("out/jit_bake.jsonl")]
cell = {(r["size"], r["threads"], r["bake"]): r for r in rows}
print(f"| N x K (density {sys.argv[1]}, M=128) | code baked | baked ms (1 thr) | tables ms (1 thr) | baked / tables | baked / tables (2 thr) |")
print("|---|---|---|---|---|---|")
for size in dict.fromkeys(r["size"] for r in rows):
    b1, t1, b2, t2 = (cell[(size, t, m)] for t in (1, 2) for m in ("always", "never"))
    print(f"| {size} | {b1['jit_code_bytes'] / 1024:.0f} KiB | {b1['sparse_ms']:.4f} | {t1['sparse_ms']:.4f} | "
          f"{b1['sparse_ms'] / t1['sparse_ms']:.2f} | {b2['sparse_ms'] / t2['sparse_ms']:.2f} |")
PY
