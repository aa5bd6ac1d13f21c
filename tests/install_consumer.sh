#!/usr/bin/env bash
# The CMake package: install the build into a fresh prefix, configure and
# build examples/consumer against it (find_package(sparta)), run it.
# Usage: install_consumer.sh BUILD_DIR SOURCE_DIR MODEL.onnx
set -euo pipefail
build=$1; src=$2; model=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
[ ! -e "$tmp/prefix/include/sparta/sparta.h" ] && { echo "FAIL: public header not installed"; exit 1; }
# Only the public headers are installed.
if find "$tmp/prefix/include" -name "*.h" | grep -v "/include/sparta/" | grep -q .; then
  echo "FAIL: internal headers installed"; exit 1
fi
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S "$src/examples/consumer" -B "$tmp/build" "${gen[@]}" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/build" >/dev/null
SPARTA_CACHE=off "$tmp/build/consumer" "$model" "$tmp/model.sparta"
