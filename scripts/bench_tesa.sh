#!/usr/bin/env bash
# The TeSA pipeline on pruned BERT-base models against ONNX Runtime and
# OpenVINO, each row one run of `sparta bench model --peers` (medians, peers
# timed in the same run): half the heads and FFN channels pruned whole
# (propagation + shrink), and every linear 90% pruned in 32x1 blocks, as a
# pruned file and as the dense file plus a TeSA spec with the same masks
# (the peers run the file as given, so that row's error is against the
# dense model: the masks change it).
# Builds what it needs into models/ (about 1 min). Usage: scripts/bench_tesa.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARTA_BUILD_DIR:-build}/tools/sparta
REPS=${1:-10}
for m in bert-base bert-base-struct50; do
  [ -f "models/$m.onnx" ] || /usr/bin/python3 scripts/model_zoo.py --out models --only "$m" 2>&1 | grep -v -i warn
done
[ -f models/bert-base-block90.onnx ] && [ -f models/bert-base-block90.tesa.json ] ||
  /usr/bin/python3 scripts/prune_onnx.py models/bert-base.onnx models/bert-base-block90.onnx --density 0.1 --block 32 \
    --spec-out models/bert-base-block90.tesa.json
inputs=(--input input_ids=models/bert-base.in.input_ids.npy --input attention_mask=models/bert-base.in.attention_mask.npy)
echo "| model | threads | sparta ms | ORT ms | OpenVINO ms | speedup vs ORT | max rel err vs ORT | import + plan ms | propagation ms |"
echo "|---|---|---|---|---|---|---|---|---|"
row() {  # label, threads, model, extra sparta args
  local label=$1 t=$2 model=$3
  shift 3
  "$BIN" bench model "$model" --reps "$REPS" --threads "$t" --peers --json "${inputs[@]}" "$@" 2>/dev/null |
    LABEL="$label" T=$t /usr/bin/python3 -c "import json,os,sys; r=json.load(sys.stdin); f = lambda k: ('%.1f' % r[k]) if k in r else '-'; print('| %s | %s | %.1f | %.1f | %s | **%.2fx** | %.1e | %.0f | %.0f |' % (os.environ['LABEL'], os.environ['T'], r['sparta_ms'], r['ort_ms'], f('openvino_ms'), r['ort_ms'] / r['sparta_ms'], r['max_rel_err_vs_ort'], r['import_ms'], r['plan_propagate_ms']))"
}
for t in 1 2; do
  row "bert-base (dense)" $t models/bert-base.onnx
  row "bert-base, half the heads and FFN channels pruned whole" $t models/bert-base-struct50.onnx
  row "bert-base, 90% pruned in 32x1 blocks (pruned file)" $t models/bert-base-block90.onnx
  row "bert-base + TeSA spec of the same masks (dense file)" $t models/bert-base.onnx --tesa models/bert-base-block90.tesa.json
done
