#!/usr/bin/env python3
"""Times the peers on one model for `sparta bench model --peers`: ONNX Runtime
(CPU, sequential, intra-op threads = --threads), OpenVINO when it is installed
in the venv (CPU, f32, latency mode, --threads threads, one stream) and, when
MODEL.pt exists beside MODEL.onnx (the model zoo writes it), PyTorch on the
same inputs.
Warm-up, then the median of --reps runs. Writes ORT's outputs as .npy into
--out-dir and prints one JSON object.

  .venv/bin/python scripts/peer_bench.py MODEL.onnx --threads T --reps R --out-dir DIR --input NAME=FILE.npy ...
"""
import argparse
import json
import os
import statistics
import sys
import time


def _threads_arg():
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return "1"


# BLAS libraries size their own thread pools from these at import time.
# PyTorch's set_num_threads does not reach OpenBLAS (Debian's torch uses it
# for matmul), which otherwise runs on every core for a "1-thread" peer.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _threads_arg()

import numpy as np  # noqa: E402


def timed(fn, reps):
    fn()
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--input", action="append", default=[])
    a = ap.parse_args()
    feeds = {}
    for spec in a.input:
        name, path = spec.split("=", 1)
        feeds[name] = np.load(path)
    out = {}
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    t0 = time.perf_counter()
    sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    out["ort_load_ms"] = (time.perf_counter() - t0) * 1e3
    missing = [i.name for i in sess.get_inputs() if i.name not in feeds]
    for i in sess.get_inputs():  # zeros for inputs not given, as sparta does
        if i.name in missing:
            dt = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}[i.type]
            feeds[i.name] = np.zeros(i.shape, dt)
    out["ort_ms"] = timed(lambda: sess.run(None, feeds), a.reps)
    os.makedirs(a.out_dir, exist_ok=True)
    for o, v in zip(sess.get_outputs(), sess.run(None, feeds)):
        np.save(os.path.join(a.out_dir, o.name.replace("/", "_").replace(":", "_") + ".npy"), v)
    out["ort_version"] = ort.__version__
    try:
        import openvino as ov
    except ImportError:
        ov = None
    if ov is not None:
        try:
            core = ov.Core()
            t0 = time.perf_counter()
            compiled = core.compile_model(a.model, "CPU", {
                "INFERENCE_NUM_THREADS": a.threads, "NUM_STREAMS": 1,
                "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
            out["openvino_load_ms"] = (time.perf_counter() - t0) * 1e3
            req = compiled.create_infer_request()
            ov_feeds = {i.name: feeds[i.name] for i in sess.get_inputs()}
            out["openvino_ms"] = timed(lambda: req.infer(ov_feeds), a.reps)
            out["openvino_version"] = ov.__version__
        except Exception as e:  # a model OpenVINO cannot read: its column stays empty
            out["openvino_error"] = str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__
    pt = a.model[:-5] + ".pt"
    if os.path.exists(pt):
        import torch
        torch.set_num_threads(a.threads)
        m = torch.jit.load(pt).eval()
        args = [torch.from_numpy(feeds[i.name]) for i in sess.get_inputs()]
        with torch.no_grad():
            out["torch_ms"] = timed(lambda: m(*args), a.reps)
        out["torch_version"] = torch.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
