#!/usr/bin/env bash
# Installs the Debian packages sparta needs to build, test and benchmark.
# Safe to run again; skips apt when everything is present.
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config
      libdnnl-dev libxbyak-dev libeigen3-dev libxsmm-dev libopenblas-dev
      nlohmann-json3-dev libcli11-dev libgtest-dev libonnx-dev libprotobuf-dev protobuf-compiler libonnx-testdata
      python3 python3-numpy python3-matplotlib python3-venv
      python3-torch python3-torchvision python3-onnx clang libclang-rt-14-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: all packages present"

# Python peers from PyPI go into a venv made from Debian's Python, which keeps
# Debian's torch and numpy visible (numpy stays below 2 for Debian's torch).
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import onnxruntime" 2>/dev/null; then
  echo "setup: creating .venv with onnxruntime"
  /usr/bin/python3 -m venv --system-site-packages .venv
  .venv/bin/pip install -q --disable-pip-version-check 'numpy<2' onnxruntime
fi
echo "setup: .venv ready ($(.venv/bin/python -c 'import onnxruntime; print("onnxruntime", onnxruntime.__version__)'))"
