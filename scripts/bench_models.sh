#!/usr/bin/env bash
# sparta against ONNX Runtime and PyTorch on the full-size zoo models (BERT-
# base, ResNet-50, MobileNetV2, ViT-small, MLP) at 1 and 2 threads, each in
# one run; prints a markdown table. Builds the zoo into models/ first if
# needed (about 30 s, 1.3 GB). Usage: scripts/bench_models.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPARTA_BUILD_DIR:-build}/tools/sparta
REPS=${1:-10}
[ -f models/bert-base.onnx ] || /usr/bin/python3 scripts/model_zoo.py --out models 2>&1 | grep -v -i warn
# OpenVINO is the third peer where it installs (PyPI); its column stays empty otherwise.
.venv/bin/python -c "import openvino" 2>/dev/null ||
  .venv/bin/pip install -q --disable-pip-version-check 'openvino<2025' >/dev/null 2>&1 ||
  echo "(OpenVINO did not install; its column stays empty)" >&2
echo "| model | threads | sparta ms | ORT ms | OpenVINO ms | PyTorch ms | sparta / ORT | max rel err vs ORT | import + plan ms |"
echo "|---|---|---|---|---|---|---|---|---|"
for m in ${MODELS:-bert-base resnet-50 mobilenet-v2 vit-small mlp}; do
  [ -f "models/$m.onnx" ] || continue
  inputs=()
  for f in models/$m.in.*.npy; do n=${f#models/$m.in.}; inputs+=(--input "${n%.npy}=$f"); done
  for t in 1 2; do
    "$BIN" bench model "models/$m.onnx" --reps "$REPS" --threads "$t" --peers --json "${inputs[@]}" |
      /usr/bin/python3 -c "import json,sys; r=json.load(sys.stdin); f = lambda k: ('%.1f' % r[k]) if k in r else '-'; print('| $m | %d | %.1f | %.1f | %s | %s | %.2f | %.1e | %.0f |' % (r['threads'], r['sparta_ms'], r['ort_ms'], f('openvino_ms'), f('torch_ms'), r['sparta_ms'] / r['ort_ms'], r['max_rel_err_vs_ort'], r['import_ms']))"
  done
done
