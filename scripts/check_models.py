#!/usr/bin/env python3
"""Runs every model of a model-zoo folder through sparta (`sparta run`) and
ONNX Runtime and compares the outputs: max relative error (max |a - b| /
max |b|) must be <= 1e-4. Run with the venv's python, which has onnxruntime.

A model exported with symbolic dims (NAME-dyn.onnx) is checked at several
shapes, twice each: as ONNX (sparta binds the dims to the inputs given), and
compiled once (`sparta compile --shape`, batch 1) and run at every shape.

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


# Extents for symbolic dims: (compile shape) then the shapes checked.
DYN_SHAPES = [{"batch": 1, "sequence": 128}, {"batch": 1, "sequence": 128}, {"batch": 2, "sequence": 37},
              {"batch": 3, "sequence": 64}]


def dyn_inputs(sess, dims, seed):
    rng = np.random.default_rng(seed)
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else dims[d] for d in i.shape]
        if i.type == "tensor(int64)":
            v = rng.integers(0, 1000, shape).astype(np.int64) if "mask" not in i.name else np.ones(shape, np.int64)
            if "mask" in i.name and shape[0] > 1:
                v[1:, shape[1] * 2 // 3:] = 0  # padding in every row but the first
        else:
            v = rng.standard_normal(shape).astype(np.float32)
        feeds[i.name] = v
    return feeds


def run_sparta(sparta, model, feeds, out, tmp):
    args = []
    for k, v in feeds.items():
        f = os.path.join(tmp, k + ".npy")
        np.save(f, v)
        args += ["--input", f"{k}={f}"]
    r = subprocess.run([sparta, "run", model, "--output-dir", out] + args, capture_output=True, text=True)
    return r.returncode == 0, r.stderr.strip()


def check_dynamic(sparta, path, name):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    worst, problems = 0.0, []
    with tempfile.TemporaryDirectory() as tmp:
        compiled = os.path.join(tmp, name + ".sparta")
        shapes = []
        for i in sess.get_inputs():
            shape = [d if isinstance(d, int) else DYN_SHAPES[0][d] for d in i.shape]
            shapes += ["--shape", i.name + "=" + ",".join(map(str, shape))]
        r = subprocess.run([sparta, "compile", path, "-o", compiled] + shapes, capture_output=True, text=True)
        if r.returncode != 0:
            return float("inf"), [f"compile: {r.stderr.strip()}"]
        for n, dims in enumerate(DYN_SHAPES[1:]):
            feeds = dyn_inputs(sess, dims, n)
            want = sess.run(None, feeds)
            for model in (path, compiled):
                out = os.path.join(tmp, f"out{n}_{os.path.basename(model)}")
                ok, err = run_sparta(sparta, model, feeds, out, tmp)
                if not ok:
                    problems.append(f"{os.path.basename(model)} at {dims}: {err}")
                    worst = float("inf")
                    continue
                for o, w in zip(sess.get_outputs(), want):
                    got = np.load(os.path.join(out, o.name.replace("/", "_").replace(":", "_") + ".npy"))
                    e = float(np.abs(got - w).max() / max(np.abs(w).max(), 1e-30)) if got.shape == w.shape else float("inf")
                    if e > TOL:
                        problems.append(f"{os.path.basename(model)} at {dims}: max_rel_err {e:.2e}")
                    worst = max(worst, e)
    return worst, problems


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
        if name.endswith("-dyn"):
            err, problems = check_dynamic(sparta, path, name)
            ok = err <= TOL and not problems
            passed += ok
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {len(DYN_SHAPES) - 1} shapes, as ONNX and compiled at "
                  f"{DYN_SHAPES[0]}: max_rel_err_vs_ort {err:.2e}" + "".join("\n     " + p for p in problems))
            continue
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
