#!/usr/bin/env bash
# Builds the ONNX-import libFuzzer target with clang (ASan + UBSan) and runs it
# for a bounded time on the seed corpus. The importer, the IR, shape
# inference and the operator definitions it consults are compiled here with
# the sanitizers; the kernels they reference (never run by this target) come
# uninstrumented from the main build's core library, whose per-ISA sources
# only GCC compiles. Usage: run_fuzz.sh BUILD_DIR CORE_LIB [SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../src" && pwd)
out=$1
core_lib=$2
secs=${3:-60}
mkdir -p "$out"
bin="$out/onnx_import_fuzzer"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DONNX_NAMESPACE=onnx -DONNX_ML=1 -I"$src" \
  "$here/onnx_import_fuzzer.cpp" "$src/frontend/onnx_import.cpp" "$src/analysis/shape_inference.cpp" "$src/analysis/onnx_rules.cpp" \
  "$src/ir/graph.cpp" "$src/core/error.cpp" "$src/core/shape.cpp" "$src/core/tensor.cpp" "$src/core/tesa.cpp" \
  "$src"/ops/*.cpp "$core_lib" -ldnnl -lgomp -lonnx -lonnx_proto -lprotobuf -o "$bin"
work="$out/fuzz_corpus"
mkdir -p "$work"
cp -n "$here"/corpus/* "$work"/ 2>/dev/null || true
# -rss_limit_mb bounds a corrupt length that asks for memory; the importer
# must reject those before allocating.
"$bin" "$work" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 | tail -15
