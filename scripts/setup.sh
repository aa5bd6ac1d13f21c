#!/usr/bin/env bash
# Installs the Debian packages sparta needs to build, test and benchmark.
# Safe to run again; skips apt when everything is present.
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config
      libdnnl-dev libxbyak-dev libeigen3-dev libxsmm-dev libopenblas-dev
      nlohmann-json3-dev libcli11-dev libgtest-dev libonnx-dev libprotobuf-dev protobuf-compiler libonnx-testdata
      python3 python3-numpy python3-matplotlib)
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
