#!/usr/bin/env bash
# sparta's main job, on a fresh machine: set up, build, make a BERT-base
# (sequence 128, fixed seed), prune every linear weight in 32x1 blocks to 90%
# (scripts/prune_onnx.py), compile it to a .sparta file, check the compiled
# model's outputs against ONNX Runtime's on the same pruned file, and print
# one table: ONNX Runtime, OpenVINO, sparta with sparsity off, and the
# compiled model, with speedups against ONNX Runtime (timed in the same run)
# and load times. Writes out/demo/: the .sparta file, report.json,
# report.html and table.md. Usage: scripts/demo.sh [REPS] (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-10}
T0=$(date +%s)
step() { echo "demo: [$(( $(date +%s) - T0 )) s] $*"; }
step "setting up (apt, venv)"
scripts/setup.sh
step "building"
scripts/build.sh
BIN=${SPARTA_BUILD_DIR:-build}/tools/sparta
mkdir -p models out/demo
if [ ! -f models/bert-base.onnx ]; then
  step "building BERT-base from its definition (under a minute)"
  /usr/bin/python3 scripts/model_zoo.py --out models --only bert-base 2>&1 | grep -v -i warn
fi
if [ ! -f models/bert-base-block90.onnx ]; then
  step "pruning every linear weight in 32x1 blocks to 90%"
  /usr/bin/python3 scripts/prune_onnx.py models/bert-base.onnx models/bert-base-block90.onnx --density 0.1 --block 32 \
    --spec-out models/bert-base-block90.tesa.json
fi
step "compiling (propagation, shrink, kernels chosen by measurement; cached for the next compile)"
"$BIN" compile models/bert-base-block90.onnx -o out/demo/bert-base-block90.sparta --report out/demo/report.json
"$BIN" report out/demo/bert-base-block90.sparta --html out/demo/report.html | tail -2
inputs=(--input input_ids=models/bert-base.in.input_ids.npy --input attention_mask=models/bert-base.in.attention_mask.npy)
step "timing the compiled model against ONNX Runtime and OpenVINO ($REPS runs each, 1 thread)"
"$BIN" bench model out/demo/bert-base-block90.sparta --peers --json --reps "$REPS" "${inputs[@]}" > out/demo/compiled.json
step "timing sparta with sparsity off on the same file, against ONNX Runtime again"
"$BIN" bench model models/bert-base-block90.onnx --dense --peers --json --reps "$REPS" "${inputs[@]}" > out/demo/dense.json
/usr/bin/python3 - out/demo/compiled.json out/demo/dense.json <<'PY' | tee out/demo/table.md
import json, sys
c, d = (json.load(open(p)) for p in sys.argv[1:3])
err = c["max_rel_err_vs_ort"]
print(f"\nBERT-base, sequence 128, every linear weight 90% pruned in 32x1 blocks; 1 thread, median of {c['reps']} runs")
print(f"compiled model's outputs vs ONNX Runtime's on the same pruned file: max relative error {err:.1e}\n")
print("| engine | ms | speedup vs ONNX Runtime | load ms |")
print("|---|---|---|---|")
print(f"| ONNX Runtime {c.get('ort_version', '')} | {c['ort_ms']:.1f} | 1.00x | {c['ort_load_ms']:.0f} |")
if "openvino_ms" in c:
    print(f"| OpenVINO {c.get('openvino_version', '').split('-')[0]} | {c['openvino_ms']:.1f} | {c['ort_ms'] / c['openvino_ms']:.2f}x | {c['openvino_load_ms']:.0f} |")
print(f"| sparta, sparsity off (`--dense`, from ONNX) | {d['sparta_ms']:.1f} | {d['ort_ms'] / d['sparta_ms']:.2f}x | {d['import_ms']:.0f} |")
print(f"| **sparta, compiled (.sparta)** | **{c['sparta_ms']:.1f}** | **{c['ort_ms'] / c['sparta_ms']:.2f}x** | {c['import_ms']:.0f} |")
print("\n(speedups are against ONNX Runtime timed in the same run; load: file to a ready session)")
if not err <= 1e-4:
    sys.exit(f"demo: FAIL: the compiled model's outputs differ from ONNX Runtime's ({err:.1e} > 1e-4)")
PY
step "done: out/demo/table.md, out/demo/report.html (per-layer report)"
