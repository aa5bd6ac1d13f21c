#!/usr/bin/env bash
# The targets of the TeSA pipeline (compiled models) against ONNX Runtime
# and OpenVINO: each model is compiled (`sparta compile`), then timed with
# `sparta bench model MODEL.sparta --peers` (medians; the peers run the ONNX
# file it was compiled from, in the same run). Also the load times of
# compiled BERT-base models and a second compile with a warm kernel-choice
# cache. Prints a markdown table; writes out/tesa/*.json.
# Builds what it needs into models/ (a few minutes the first time).
# Usage: scripts/bench_tesa.sh [REPS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARTA_BUILD_DIR:-build}/tools/sparta
REPS=${1:-10}
T=${2:-1}
OUT=out/tesa
mkdir -p "$OUT"
for m in bert-base bert-base-struct50 resnet-50-struct50 resnet-18-160; do
  [ -f "models/$m.onnx" ] || /usr/bin/python3 scripts/model_zoo.py --out models --only "$m" 2>&1 | grep -v -i warn
done
[ -f models/bert-base-block90.onnx ] && [ -f models/bert-base-block90.tesa.json ] ||
  /usr/bin/python3 scripts/prune_onnx.py models/bert-base.onnx models/bert-base-block90.onnx --density 0.1 --block 32 \
    --spec-out models/bert-base-block90.tesa.json
bert=(--input input_ids=models/bert-base.in.input_ids.npy --input attention_mask=models/bert-base.in.attention_mask.npy)
# compile NAME MODEL [compile args]; bench NAME [bench args] -> $OUT/NAME.json
compile() { local name=$1 model=$2; shift 2; "$BIN" compile "$model" -o "$OUT/$name.sparta" --threads "$T" "$@" >/dev/null; }
bench() { local name=$1; shift; "$BIN" bench model "$OUT/$name.sparta" --reps "$REPS" --threads "$T" --json "$@" > "$OUT/$name.json"; }
compile bert-struct50 models/bert-base-struct50.onnx && bench bert-struct50 --peers "${bert[@]}"
compile resnet50-struct50 models/resnet-50-struct50.onnx && bench resnet50-struct50 --peers --input image=models/resnet-50-struct50.in.image.npy
compile bert-block90 models/bert-base-block90.onnx && bench bert-block90 --peers "${bert[@]}"
compile resnet18-160 models/resnet-18-160.onnx && bench resnet18-160 --peers --input image=models/resnet-18-160.in.image.npy
compile bert-spec models/bert-base.onnx --tesa models/bert-base-block90.tesa.json 2>/dev/null && bench bert-spec --peers "${bert[@]}"
compile bert-dense models/bert-base.onnx && bench bert-dense "${bert[@]}"
# A second compile with a warm cache (a fresh cache folder, compiled twice).
cache=$(mktemp -d)
SPARTA_CACHE_DIR=$cache "$BIN" compile models/bert-base-block90.onnx -o "$OUT/warm.sparta" --threads "$T" > "$OUT/compile1.txt"
SPARTA_CACHE_DIR=$cache "$BIN" compile models/bert-base-block90.onnx -o "$OUT/warm.sparta" --threads "$T" > "$OUT/compile2.txt"
rm -rf "$cache"
OUT=$OUT T=$T /usr/bin/python3 - <<'PY'
import json, os, re
out, t = os.environ["OUT"], os.environ["T"]
r = {n: json.load(open(f"{out}/{n}.json")) for n in
     ["bert-struct50", "resnet50-struct50", "bert-block90", "resnet18-160", "bert-spec", "bert-dense"]}
def ratio(n): return r[n]["ort_ms"] / r[n]["sparta_ms"]
measured = [int(re.search(r"measured (\d+)", open(f"{out}/compile{i}.txt").read()).group(1)) for i in (1, 2)]
rows = [
    ("BERT-base, half the heads and FFN channels pruned whole", f"{ratio('bert-struct50'):.2f}x ORT", ratio("bert-struct50") >= 1.9, ">= 1.9x"),
    ("ResNet-50, half the channels of each bottleneck's first two convolutions pruned", f"{ratio('resnet50-struct50'):.2f}x ORT", ratio("resnet50-struct50") >= 2.0, ">= 2x"),
    ("BERT-base, every linear 90% pruned in 32x1 blocks", f"{ratio('bert-block90'):.2f}x ORT", ratio("bert-block90") >= 5.5, ">= 5.5x"),
    ("dense ResNet-18 at 160x160", f"{ratio('resnet18-160'):.2f}x ORT", ratio("resnet18-160") >= 1.0, ">= 1.0x"),
    ("dense BERT-base + TeSA spec of the same masks", f"{r['bert-spec']['sparta_ms']:.1f} ms vs {r['bert-block90']['sparta_ms']:.1f} ms",
     r["bert-spec"]["sparta_ms"] <= 1.1 * r["bert-block90"]["sparta_ms"], "same as the pruned file"),
    ("load a compiled pruned BERT-base", f"{r['bert-block90']['import_ms']:.0f} ms", r["bert-block90"]["import_ms"] <= 250, "<= 250 ms"),
    ("load a compiled dense BERT-base", f"{r['bert-dense']['import_ms']:.0f} ms", r["bert-dense"]["import_ms"] <= 400, "<= 400 ms"),
    ("second compile (warm cache)", f"{measured[1]} kernels timed (first: {measured[0]})", measured[1] == 0, "none timed"),
]
print(f"| target ({t} thread(s), batch 1) | measured | target | met |")
print("|---|---|---|---|")
for label, value, ok, target in rows:
    print(f"| {label} | {value} | {target} | {'yes' if ok else '**no**'} |")
print()
print("| compiled model | sparta ms | ORT ms | OpenVINO ms | max rel err vs ORT | load ms |")
print("|---|---|---|---|---|---|")
for n in ["bert-struct50", "resnet50-struct50", "bert-block90", "resnet18-160", "bert-spec"]:
    x = r[n]
    ov = f"{x['openvino_ms']:.1f}" if "openvino_ms" in x else "-"
    err = "(masked)" if n == "bert-spec" else f"{x['max_rel_err_vs_ort']:.1e}"
    print(f"| {n} | {x['sparta_ms']:.1f} | {x['ort_ms']:.1f} | {ov} | {err} | {x['import_ms']:.0f} |")
PY
