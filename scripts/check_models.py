#!/usr/bin/env python3
"""Runs every model of a model-zoo folder through sparta (`sparta run`) and
ONNX Runtime and compares the outputs: max relative error (max |a - b| /
max |b|) must be <= 1e-4. Run with the venv's python, which has onnxruntime.

  .venv/bin/python scripts/check_models.py SPARTA_BIN MODELS_DIR
"""
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

TOL = 1e-4


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sparta, models = sys.argv[1:]
    paths = sorted(glob.glob(os.path.join(models, "*.onnx")))
    if not paths:
        sys.exit(f"check_models: no .onnx files in {models} (run scripts/model_zoo.py first)")
    passed = failed = 0
    for path in paths:
        name = os.path.basename(path)[:-5]
        inputs = {f.split(".in.", 1)[1][:-4]: f for f in glob.glob(os.path.join(models, name + ".in.*.npy"))}
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        want = sess.run(None, {k: np.load(v) for k, v in inputs.items()})
        with tempfile.TemporaryDirectory() as out:
            cmd = [sparta, "run", path, "--output-dir", out] + [a for k, v in inputs.items() for a in ("--input", f"{k}={v}")]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"FAIL {name}: sparta run failed: {r.stderr.strip()}")
                failed += 1
                continue
            errs = []
            for o, w in zip(sess.get_outputs(), want):
                got = np.load(os.path.join(out, o.name.replace("/", "_").replace(":", "_") + ".npy"))
                errs.append(float(np.abs(got - w).max() / max(np.abs(w).max(), 1e-30)) if got.shape == w.shape else float("inf"))
        err = max(errs)
        ok = err <= TOL
        passed += ok
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: max_rel_err_vs_ort {err:.2e}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
