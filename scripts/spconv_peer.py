#!/usr/bin/env python3
"""Times spconv (PyPI `spconv`, its CPU build, with Debian's torch) on the
layers of `sparta bench sparseconv`, on the same coordinates and weights.

DIR holds coords.npy (int32 [N, 4]: batch, x, y, z), extent.npy (the
grid's extent, 3 values) and, per case NAME, NAME.feats.npy, NAME.weight.npy
(sparta's layout [kx, ky, kz, Cin, Cout]) and NAME.json ({"subm", "stride",
"padding", "dilation"}). For each case: the layer with its map cached
(median of --reps after warm-up), and with a fresh tensor (the map built
too). Writes NAME.spconv.coords.npy and NAME.spconv.feats.npy (rows sorted
by batch, x, y, z) and prints one JSON object {NAME: {"ms", "fresh_ms"}}.

  .venv/bin/python scripts/spconv_peer.py DIR --cases a,b --threads T --reps R
"""
import argparse
import json
import os
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--cases", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    import numpy as np
    import torch
    try:
        import spconv.pytorch as sp
    except ImportError as e:
        sys.exit(f"spconv is not installed in this Python ({e}): .venv/bin/pip install 'spconv==2.3.8'")
    torch.set_num_threads(a.threads)
    coords = np.load(os.path.join(a.dir, "coords.npy"))
    extent = [int(e) for e in np.load(os.path.join(a.dir, "extent.npy"))]
    batch = int(coords[:, 0].max()) + 1 if len(coords) else 1
    idx = torch.from_numpy(coords)
    out = {}
    for name in a.cases.split(","):
        spec = json.load(open(os.path.join(a.dir, name + ".json")))
        feats = torch.from_numpy(np.load(os.path.join(a.dir, name + ".feats.npy")))
        w = np.load(os.path.join(a.dir, name + ".weight.npy"))
        k = list(w.shape[:3])
        cin, cout = w.shape[3], w.shape[4]
        if spec["subm"]:
            layer = sp.SubMConv3d(cin, cout, k, stride=1, dilation=spec["dilation"], bias=False, indice_key="k")
        else:
            layer = sp.SparseConv3d(cin, cout, k, stride=spec["stride"], padding=spec["padding"],
                                    dilation=spec["dilation"], bias=False)
        with torch.no_grad():
            # spconv 2.x keeps [Cout, kx, ky, kz, Cin]
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.transpose(4, 0, 1, 2, 3))))
        layer.eval()

        def fresh():
            with torch.no_grad():
                return layer(sp.SparseConvTensor(feats, idx, extent, batch))

        first = fresh()
        # A submanifold layer's map is kept (under its indice_key) by the
        # tensor it returns, on the same sites: later calls on that tensor
        # reuse it, as a network's next layer does. A strided layer builds
        # its map on every call.
        cached_in = first.replace_feature(feats)

        def cached():
            with torch.no_grad():
                return layer(cached_in)

        def median(fn):
            fn()
            ts = []
            for _ in range(a.reps):
                t0 = time.perf_counter()
                fn()
                ts.append((time.perf_counter() - t0) * 1000)
            return statistics.median(ts)

        res = {"fresh_ms": median(fresh)}
        res["ms"] = median(cached) if spec["subm"] else None
        c = first.indices.numpy().astype(np.int32)
        f = first.features.numpy()
        order = np.lexsort((c[:, 3], c[:, 2], c[:, 1], c[:, 0]))
        np.save(os.path.join(a.dir, name + ".spconv.coords.npy"), c[order])
        np.save(os.path.join(a.dir, name + ".spconv.feats.npy"), np.ascontiguousarray(f[order]))
        out[name] = res
    print(json.dumps(out))


if __name__ == "__main__":
    main()
