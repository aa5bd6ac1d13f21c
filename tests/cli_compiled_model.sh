#!/usr/bin/env bash
# sparta compile end to end: the second compile of a model measures no
# kernel (a fresh on-disk cache), the compiled model runs bit-identically
# to the ONNX model, inspect and bench take it, and a corrupt one is one
# clear error.
# Usage: cli_compiled_model.sh SPARTA MODELS_DIR EXPECT_ERROR_SCRIPT
set -euo pipefail
sparta=$1; models=$2; expect=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export SPARTA_CACHE_DIR=$tmp/cache
unset SPARTA_CACHE
m=$models/mlp_static.onnx
"$sparta" compile "$m" -o "$tmp/m.sparta" | tee "$tmp/first"
grep -q "measured [1-9]" "$tmp/first" || { echo "FAIL: the first compile measured nothing"; exit 1; }
"$sparta" compile "$m" -o "$tmp/m.sparta" --report "$tmp/compile_report.json" | tee "$tmp/second"
grep -q "measured 0," "$tmp/second" || { echo "FAIL: the second compile measured kernels again"; exit 1; }
"$sparta" run "$tmp/m.sparta" --input x="$models/x.npy" --output-dir "$tmp/a" >/dev/null
"$sparta" run "$m" --input x="$models/x.npy" --output-dir "$tmp/b" >/dev/null
cmp "$tmp/a/y.npy" "$tmp/b/y.npy" || { echo "FAIL: compiled and ONNX outputs differ"; exit 1; }
"$sparta" inspect "$tmp/m.sparta" | grep -q "^kernels:" || { echo "FAIL: inspect"; exit 1; }
"$sparta" bench model "$tmp/m.sparta" --reps 2 --json --input x="$models/x.npy" | grep -q '"compiled":true' ||
  { echo "FAIL: bench model"; exit 1; }
"$sparta" report "$tmp/m.sparta" --json > "$tmp/report.json"
cmp "$tmp/report.json" "$tmp/compile_report.json" || { echo "FAIL: report differs from compile --report"; exit 1; }
grep -q '"layers":\[{' "$tmp/report.json" || { echo "FAIL: report has no layers"; exit 1; }
"$sparta" report "$tmp/m.sparta" --html "$tmp/report.html" | grep -q "^fc1 " || { echo "FAIL: report table"; exit 1; }
grep -q "<svg" "$tmp/report.html" || { echo "FAIL: report --html"; exit 1; }
"$expect" "cannot write" -- "$sparta" report "$tmp/m.sparta" --html "$tmp/no/such/dir/r.html"
size=$(stat -c %s "$tmp/m.sparta")
head -c $((size - 7)) "$tmp/m.sparta" > "$tmp/truncated.sparta"
"$expect" "truncated" -- "$sparta" run "$tmp/truncated.sparta" --input x="$models/x.npy"
cp "$tmp/m.sparta" "$tmp/flipped.sparta"
printf '\x01' | dd of="$tmp/flipped.sparta" bs=1 seek=$((size - 3)) conv=notrunc status=none
"$expect" "checksum" -- "$sparta" bench model "$tmp/flipped.sparta"
"$expect" "--tesa applies to ONNX models" -- "$sparta" run "$tmp/m.sparta" --tesa x.json
"$expect" "--ablation compiles the model" -- "$sparta" bench model "$tmp/m.sparta" --ablation
"$expect" "--layout applies to ONNX models" -- "$sparta" bench model "$tmp/m.sparta" --layout nhwc
"$expect" "already compiled" -- "$sparta" compile "$tmp/m.sparta" -o "$tmp/again.sparta"
"$expect" "cannot write" -- "$sparta" compile "$m" -o "$tmp/no/such/dir/m.sparta"
[ ! -e "$tmp/no/such/dir" ] || { echo "FAIL: a failed compile left files"; exit 1; }
echo "compiled model ok"
