#!/usr/bin/env python3
"""Magnitude-prunes the linear-layer weights of an ONNX model, for trying
sparta on a pruned model before the pruning toolkit exists: every 2-D
MatMul weight [K, N] (both extents >= 64) keeps the blocks of B consecutive
output features with the largest L2 norm, `--density` of them, and zeroes
the rest. Other tensors are untouched. Uses Debian's python3-onnx / numpy.
With --spec-out it also writes the masks as a TeSA spec (JSON, one .npy
mask per weight in SPEC's folder), for `sparta ... --tesa SPEC` on the
unpruned model.

  /usr/bin/python3 scripts/prune_onnx.py models/bert-base.onnx models/bert-base-block90.onnx --density 0.1 --block 32
"""
import argparse
import json
import os

import numpy as np
import onnx
from onnx import numpy_helper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--density", type=float, default=0.1, help="fraction of weight blocks kept")
    ap.add_argument("--block", type=int, default=32, help="consecutive output features pruned together")
    ap.add_argument("--spec-out", help="also write the masks as a TeSA spec (JSON) with .npy masks beside it")
    a = ap.parse_args()
    if not 0.0 < a.density <= 1.0:
        ap.error("--density must be in (0, 1]")
    m = onnx.load(a.model)
    weights = {n.input[1] for n in m.graph.node if n.op_type == "MatMul" and len(n.input) == 2}
    pruned = 0
    spec = {"version": 1, "tensors": {}}
    mask_dir = os.path.splitext(a.spec_out)[0] + "_masks" if a.spec_out else None
    if mask_dir:
        os.makedirs(mask_dir, exist_ok=True)
    for i, t in enumerate(m.graph.initializer):
        if t.name not in weights or len(t.dims) != 2 or t.data_type != onnx.TensorProto.FLOAT:
            continue
        w = numpy_helper.to_array(t).copy()
        k, n = w.shape
        if k < 64 or n < 64 or n % a.block:
            continue
        blocks = w.reshape(k, n // a.block, a.block)
        norms = np.linalg.norm(blocks, axis=2)
        keep = max(1, int(round(a.density * norms.size)))
        threshold = np.partition(norms.ravel(), norms.size - keep)[norms.size - keep]
        blocks[norms < threshold] = 0.0
        if mask_dir:
            fname = "%03d.npy" % pruned
            np.save(os.path.join(mask_dir, fname), blocks.reshape(k, n) != 0)
            spec["tensors"][t.name] = {"mask": os.path.join(os.path.basename(mask_dir), fname)}
        m.graph.initializer[i].CopyFrom(numpy_helper.from_array(blocks.reshape(k, n), t.name))
        pruned += 1
    onnx.save(m, a.out)
    print(f"{a.out}: {pruned} weights pruned to density {a.density} in blocks of {a.block} output features")
    if a.spec_out:
        with open(a.spec_out, "w") as f:
            json.dump(spec, f, indent=1)
        print(f"{a.spec_out}: the same masks as a TeSA spec ({mask_dir}/)")


if __name__ == "__main__":
    main()
