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

# The corpus of real models (scripts/corpus.py, fetched if missing) at one
# thread, with the geometric mean of sparta / ORT; where sparta is slower,
# its per-operator profile follows the table. CORPUS=0 skips it.
[ "${CORPUS:-1}" = 1 ] || exit 0
.venv/bin/python scripts/corpus.py fetch >&2
echo
echo "| corpus model | sparta ms | ORT ms | OpenVINO ms | sparta / ORT | max rel err vs ORT |"
echo "|---|---|---|---|---|---|"
slower=()
ratios=()
for f in models/corpus/*.onnx; do
  m=$(basename "$f" .onnx)
  inputs=()
  for i in models/corpus/$m.in.*.npy; do n=${i#models/corpus/$m.in.}; inputs+=(--input "${n%.npy}=$i"); done
  row=$("$BIN" bench model "$f" --reps "$REPS" --threads 1 --peers --json "${inputs[@]}" |
    /usr/bin/python3 -c "import json,sys; r=json.load(sys.stdin); f = lambda k: ('%.3f' % r[k]) if k in r else '-'; print('%.4f | $m | %.3f | %.3f | %s | %.2f | %.1e |' % (r['sparta_ms'] / r['ort_ms'], r['sparta_ms'], r['ort_ms'], f('openvino_ms'), r['sparta_ms'] / r['ort_ms'], r['max_rel_err_vs_ort']))")
  ratio=${row%% *}
  ratios+=("$ratio")
  echo "| ${row#* | }"
  /usr/bin/python3 -c "import sys; sys.exit(0 if float('$ratio') > 1 else 1)" && slower+=("$m")
done
/usr/bin/python3 -c "import math,sys; r=[float(x) for x in sys.argv[1:]]; print('\ngeometric mean sparta / ORT over %d corpus models (1 thread): %.2f' % (len(r), math.exp(sum(map(math.log, r)) / len(r))))" "${ratios[@]}"
for m in "${slower[@]}"; do
  inputs=()
  for i in models/corpus/$m.in.*.npy; do n=${i#models/corpus/$m.in.}; inputs+=(--input "${n%.npy}=$i"); done
  echo
  echo "profile of $m (sparta slower than ORT):"
  "$BIN" bench model "models/corpus/$m.onnx" --reps "$REPS" --threads 1 --profile --top 5 "${inputs[@]}" | sed 's/^/    /'
done
