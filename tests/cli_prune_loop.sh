#!/usr/bin/env bash
# The pruning loop in three commands, as the README shows it: prune an
# ONNX model, compile the pruned model, time it against ONNX Runtime on the
# same file (outputs compared). The model is an MLP with random weights.
# Usage: cli_prune_loop.sh SPARTA WORK_DIR
set -euo pipefail
sparta=$1 work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
/usr/bin/python3 - <<'PY'
import numpy as np
from onnx import TensorProto, helper, numpy_helper, save
rng = np.random.default_rng(0)
dims = [256, 1024, 1024, 10]
nodes, inits, x = [], [], "x"
for i in range(3):
    inits += [numpy_helper.from_array(rng.normal(0, 0.05, (dims[i], dims[i + 1])).astype(np.float32), f"W{i}"),
              numpy_helper.from_array(rng.normal(0, 0.05, dims[i + 1]).astype(np.float32), f"b{i}")]
    nodes += [helper.make_node("MatMul", [x, f"W{i}"], [f"m{i}"], name=f"fc{i}"),
              helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"], name=f"bias{i}")]
    x = f"a{i}"
    if i < 2:
        nodes.append(helper.make_node("Relu", [x], [f"r{i}"], name=f"relu{i}"))
        x = f"r{i}"
nodes[-1].output[0] = "y"
g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "model.onnx")
PY
# --- the three commands ---
"$sparta" prune model.onnx -o pruned.onnx --pattern block --block 32x1 --sparsity 0.9
"$sparta" compile pruned.onnx -o pruned.sparta
"$sparta" bench model pruned.sparta --peers --reps 5 --json > bench.json
# ---
# Latency-aware: the per-layer choice for a modest measured speedup.
"$sparta" prune model.onnx -o chosen.onnx --target-speedup 1.1 > chosen.txt
grep -q "target 1.10x: unpruned" chosen.txt
/usr/bin/python3 - <<'PY'
import json
r = json.load(open("bench.json"))
assert r["max_rel_err_vs_ort"] <= 1e-4, r["max_rel_err_vs_ort"]
print(f"loop: sparta {r['sparta_ms']:.3f} ms, ONNX Runtime {r['ort_ms']:.3f} ms, max relative error {r['max_rel_err_vs_ort']:.1e}")
PY
