#!/usr/bin/env bash
# Installs everything sparta needs to build, test, run the demo and the
# benchmarks, on a Debian 12 x86-64 machine that may start with nothing (no
# compiler, no CMake, no Python, no git): Debian packages with apt, then the
# Python peers from PyPI in .venv. Needs root or sudo, and network access to
# Debian's and PyPI's package servers. Safe to run again: each step is skipped
# when what it installs is already there. One line per step, with its time.
set -euo pipefail
cd "$(dirname "$0")/.."

# ocl-icd-opencl-dev: oneDNN's CMake config (dnnl-config.cmake) calls
# find_package(OpenCL); Debian's libdnnl-dev only recommends it, and this
# script installs without recommends.
PKGS=(build-essential cmake ninja-build pkg-config ca-certificates
      libdnnl-dev ocl-icd-opencl-dev libxbyak-dev libeigen3-dev libxsmm-dev libopenblas-dev
      nlohmann-json3-dev libcli11-dev libgtest-dev libonnx-dev libprotobuf-dev protobuf-compiler libonnx-testdata
      python3 python3-dev pybind11-dev python3-numpy python3-matplotlib python3-venv dataset-fashion-mnist
      python3-torch python3-torchvision python3-onnx clang libclang-rt-14-dev)
# PyPI peers (numpy stays below 2 for Debian's torch; OpenVINO 2025 dropped
# the API version the peer script uses; spconv's CPU build, the point-cloud
# peer, runs on Debian's torch).
PIP_PKGS=('numpy<2' onnxruntime 'openvino<2025' 'spconv==2.3.8')

step_start=0
step() { step_start=$(date +%s); echo "setup: $*"; }
done_step() { echo "setup:   done in $(( $(date +%s) - step_start )) s"; }

step "checking ${#PKGS[@]} Debian packages"
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: error: installing packages needs root or sudo" >&2; exit 1; }
    SUDO="sudo"
  fi
  echo "setup: apt-get update"
  $SUDO apt-get update -qq
  echo "setup: apt-get install ${#missing[@]} packages and their dependencies: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
done_step

step "Python peers in .venv (${PIP_PKGS[*]})"
if ! .venv/bin/python -c "import onnxruntime, openvino, spconv" 2>/dev/null; then
  [ -x .venv/bin/python ] || /usr/bin/python3 -m venv --system-site-packages .venv
  .venv/bin/pip install -q --disable-pip-version-check "${PIP_PKGS[@]}"
fi
done_step
echo "setup: ready ($(.venv/bin/python -c 'import onnxruntime, openvino, spconv; print("onnxruntime", onnxruntime.__version__ + ", openvino", openvino.__version__ + ", spconv", spconv.__version__)' 2>/dev/null))"
