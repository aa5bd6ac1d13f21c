#!/usr/bin/env bash
# The pruning toolkit's model target: `sparta prune` on a BERT (hidden 384,
# 3 layers, sequence 64; built from its definition, seeded) at 90% in 32x1
# blocks, then sparta against ONNX Runtime on the pruned file (1 thread by
# default, outputs compared); and the latency-aware choice for a 3x
# speedup over the unpruned model. Prints a markdown table; writes
# out/prune/*.json and the pruned models.
# Usage: scripts/bench_prune.sh [REPS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARTA_BUILD_DIR:-build}/tools/sparta
REPS=${1:-30}
T=${2:-1}
OUT=out/prune
mkdir -p "$OUT"
[ -f models/bert-small.onnx ] || /usr/bin/python3 scripts/model_zoo.py --out models --only bert-small 2>&1 | grep -v -i warn
in=(--input input_ids=models/bert-small.in.input_ids.npy --input attention_mask=models/bert-small.in.attention_mask.npy)
"$BIN" prune models/bert-small.onnx -o "$OUT/bert-small-block90.onnx" --pattern block --block 32x1 --sparsity 0.9 | tail -1
"$BIN" bench model "$OUT/bert-small-block90.onnx" --peers --reps "$REPS" --threads "$T" --json "${in[@]}" > "$OUT/bert-small-block90.json"
"$BIN" bench model models/bert-small.onnx --peers --reps "$REPS" --threads "$T" --json "${in[@]}" > "$OUT/bert-small.json"
"$BIN" prune models/bert-small.onnx -o "$OUT/bert-small-t3.onnx" --target-speedup 3 --threads "$T" -q
"$BIN" bench model "$OUT/bert-small-t3.onnx" --peers --reps "$REPS" --threads "$T" --json "${in[@]}" > "$OUT/bert-small-t3.json"
OUT=$OUT T=$T /usr/bin/python3 - <<'PY'
import json, os
out, t = os.environ["OUT"], os.environ["T"]
r = {n: json.load(open(f"{out}/{n}.json")) for n in ("bert-small", "bert-small-block90", "bert-small-t3")}
print(f"| BERT hidden 384, 3 layers, seq 64 ({t} thread(s)) | sparta ms | ONNX Runtime ms | sparta vs ORT | max rel. err vs ORT |")
print("|---|---|---|---|---|")
labels = {"bert-small": "unpruned", "bert-small-block90": "`sparta prune --pattern block --block 32x1 --sparsity 0.9`",
          "bert-small-t3": "`sparta prune --target-speedup 3`"}
for n, label in labels.items():
    x = r[n]
    print(f"| {label} | {x['sparta_ms']:.2f} | {x['ort_ms']:.2f} | **{x['ort_ms'] / x['sparta_ms']:.2f}x** | {x['max_rel_err_vs_ort']:.1e} |")
v = r["bert-small-block90"]["ort_ms"] / r["bert-small-block90"]["sparta_ms"]
print(f"\ntarget: 90% 32x1 blocks >= 2.5x ORT: {v:.2f}x, {'met' if v >= 2.5 else 'NOT met'}")
print(f"latency-aware choice: {r['bert-small']['sparta_ms'] / r['bert-small-t3']['sparta_ms']:.2f}x over the unpruned model in sparta (asked 3x)")
PY
