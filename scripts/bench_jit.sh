#!/usr/bin/env bash
# The end-to-end targets of code specialization, and the ablation table of
# the README: `sparta bench model MODEL.onnx --ablation --peers` for
# BERT-base pruned in 32x1 blocks and unstructured (every encoder linear
# 90%) and the channel-pruned ResNet-50: every stage compiled and timed in
# one run (medians), ONNX Runtime on the same file. Also the generation
# time of a compiled unstructured BERT-base's kernels when it loads.
# Prints markdown tables; writes out/jit/*.json. Builds what it needs into
# models/ (a few minutes the first time).
# Usage: scripts/bench_jit.sh [REPS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARTA_BUILD_DIR:-build}/tools/sparta
REPS=${1:-10}
T=${2:-1}
OUT=out/jit
mkdir -p "$OUT"
for m in bert-base resnet-50-struct50; do
  [ -f "models/$m.onnx" ] || /usr/bin/python3 scripts/model_zoo.py --out models --only "$m" 2>&1 | grep -v -i warn
done
[ -f models/bert-base-block90.onnx ] ||
  /usr/bin/python3 scripts/prune_onnx.py models/bert-base.onnx models/bert-base-block90.onnx --density 0.1 --block 32
[ -f models/bert-base-unstr90.onnx ] ||
  /usr/bin/python3 scripts/prune_onnx.py models/bert-base.onnx models/bert-base-unstr90.onnx --density 0.1 --block 1
bert=(--input input_ids=models/bert-base.in.input_ids.npy --input attention_mask=models/bert-base.in.attention_mask.npy)
ablate() { local name=$1 model=$2; shift 2
  "$BIN" bench model "$model" --ablation --peers --reps "$REPS" --threads "$T" --json "$@" > "$OUT/$name.json"; }
ablate bert-block90 models/bert-base-block90.onnx "${bert[@]}"
ablate bert-unstr90 models/bert-base-unstr90.onnx "${bert[@]}"
ablate resnet50-struct50 models/resnet-50-struct50.onnx --input image=models/resnet-50-struct50.in.image.npy
"$BIN" compile models/bert-base-unstr90.onnx -o "$OUT/bert-unstr90.sparta" --threads "$T" > /dev/null
"$BIN" bench model "$OUT/bert-unstr90.sparta" --reps 3 --threads "$T" --json "${bert[@]}" > "$OUT/load-unstr90.json"
OUT=$OUT T=$T /usr/bin/python3 - <<'PY'
import json, os
out, t = os.environ["OUT"], os.environ["T"]
names = {"bert-block90": "BERT-base, every encoder linear 90% pruned in 32x1 blocks",
         "bert-unstr90": "BERT-base, every encoder linear 90% pruned unstructured",
         "resnet50-struct50": "ResNet-50, bottleneck channels pruned (`resnet-50-struct50`)"}
r = {n: json.load(open(f"{out}/{n}.json")) for n in names}
stages = ["dense", "sparse_kernels", "propagation", "transformation", "specialization"]
print(f"| model ({t} thread(s)) | " + " | ".join(stages) + " | ONNX Runtime |")
print("|---|" + "---|" * (len(stages) + 1))
for n, label in names.items():
    ms = {s["stage"]: s["ms"] for s in r[n]["ablation"]}
    cells = [f"{ms[s]:.1f} ms ({r[n]['ort_ms'] / ms[s]:.2f}x)" for s in stages]
    print(f"| {label} | " + " | ".join(cells) + f" | {r[n]['ort_ms']:.1f} ms |")
print("\n(x: speedup over ONNX Runtime on the same file, in the same run)\n")
def stage(n, s): return next(x["ms"] for x in r[n]["ablation"] if x["stage"] == s)
load = json.load(open(f"{out}/load-unstr90.json"))
rows = [
    ("BERT-base, 90% pruned in 32x1 blocks", r["bert-block90"]["ort_ms"] / stage("bert-block90", "specialization"), 6.0, "x ORT"),
    ("BERT-base, 90% pruned unstructured", r["bert-unstr90"]["ort_ms"] / stage("bert-unstr90", "specialization"), 4.5, "x ORT"),
    ("specialization over transformation, unstructured BERT-base",
     stage("bert-unstr90", "transformation") / stage("bert-unstr90", "specialization"), 1.15, "x"),
]
print(f"| target ({t} thread(s), batch 1) | measured | target | met |")
print("|---|---|---|---|")
for label, v, target, unit in rows:
    print(f"| {label} | {v:.2f}{unit} | >= {target}{unit} | {'yes' if v >= target else '**no**'} |")
gen = load["jit_ms"] + load["jit_check_ms"]
print(f"| generating the kernels of a compiled unstructured BERT-base on load | {load['jit_kernels']} kernels, "
      f"{load['jit_ms']:.0f} ms + {load['jit_check_ms']:.0f} ms self-check | < 100 ms | {'yes' if gen < 100 else '**no**'} |")
PY
