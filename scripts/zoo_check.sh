#!/usr/bin/env bash
# Builds the small model zoo (if missing) and checks sparta against ONNX
# Runtime on every model. Usage: scripts/zoo_check.sh SPARTA_BIN MODELS_DIR [--full]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$1 DIR=$2
SIZE=--small
[ "${3:-}" = "--full" ] && SIZE=""
ls "$DIR"/*.onnx >/dev/null 2>&1 || /usr/bin/python3 scripts/model_zoo.py --out "$DIR" $SIZE 2>&1 | grep -v -i warn
# A block-pruned BERT too: its linear layers take the sparse-kernel path.
if [ -f "$DIR/bert-tiny.onnx" ] && [ ! -f "$DIR/bert-tiny-block90.onnx" ]; then
  /usr/bin/python3 scripts/prune_onnx.py "$DIR/bert-tiny.onnx" "$DIR/bert-tiny-block90.onnx" --density 0.1 --block 32 >/dev/null
  for f in "$DIR"/bert-tiny.in.*.npy; do cp "$f" "${f/bert-tiny./bert-tiny-block90.}"; done
fi
# Dynamic exports (symbolic batch and sequence), checked at several shapes.
if [ -f "$DIR/bert-tiny.onnx" ] && [ ! -f "$DIR/bert-tiny-dyn.onnx" ]; then
  /usr/bin/python3 scripts/model_zoo.py --out "$DIR" --only bert-tiny vit-tiny mobilenet-v2-96 --dynamic 2>&1 | grep -v -i warn
fi
exec .venv/bin/python scripts/check_models.py "$BIN" "$DIR"
