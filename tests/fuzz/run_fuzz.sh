#!/usr/bin/env bash
# Builds one libFuzzer target with clang (ASan + UBSan) and runs it for a
# bounded time on its seed corpus (corpus_TARGET/). The code under test is
# compiled here with the sanitizers; the onnx_import target also consults
# the operator definitions, whose kernels (never run by it) come
# uninstrumented from the main build's core library, since the per-ISA
# kernel sources compile only with GCC.
# Usage: run_fuzz.sh TARGET BUILD_DIR CORE_LIB [SECONDS]   (TARGET: onnx_import, tesa_spec, artifact)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../src" && pwd)
target=$1
out=$2
core_lib=$3
secs=${4:-60}
mkdir -p "$out"
bin="$out/${target}_fuzzer"
core=("$src/core/error.cpp" "$src/core/shape.cpp" "$src/core/tensor.cpp" "$src/core/tesa.cpp" "$src/ir/graph.cpp")
case "$target" in
  onnx_import)
    sources=("$src/frontend/onnx_import.cpp" "$src/analysis/shape_inference.cpp" "$src/analysis/onnx_rules.cpp"
             "$src"/analysis/tesa_*.cpp
             "${core[@]}" "$src"/ops/*.cpp)
    libs=("$core_lib" -ldnnl -lgomp -lonnx -lonnx_proto -lprotobuf) ;;
  artifact)
    # subgraphs (If, Loop) are kept as ONNX bytes: the importer reads them
    sources=("$src"/runtime/artifact*.cpp "$src/runtime/compiled_model.cpp" "$src/runtime/report.cpp" "$src"/passes/*.cpp
             "$src/analysis/shape_inference.cpp" "$src/analysis/onnx_rules.cpp" "$src"/analysis/tesa_*.cpp
             "$src/frontend/onnx_import.cpp" "${core[@]}" "$src"/ops/*.cpp)
    libs=("$core_lib" -ldnnl -lgomp -lonnx -lonnx_proto -lprotobuf) ;;
  tesa_spec)
    sources=("$src/frontend/tesa_spec.cpp" "$src/core/npy.cpp" "${core[@]}")
    libs=() ;;
  *) echo "run_fuzz.sh: unknown target '$target'" >&2; exit 2 ;;
esac
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DONNX_NAMESPACE=onnx -DONNX_ML=1 -I"$src" -I"$src/../include" "$here/${target}_fuzzer.cpp" "${sources[@]}" "${libs[@]}" -o "$bin"
work="$out/corpus_$target"
mkdir -p "$work"
cp -n "$here/corpus_$target"/* "$work"/ 2>/dev/null || true
# -rss_limit_mb bounds a corrupt length that asks for memory; readers must
# reject those before allocating.
"$bin" "$work" -artifact_prefix="$out/" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 | tail -15
