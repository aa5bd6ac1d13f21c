#!/usr/bin/env python3
"""Times spconv (PyPI `spconv`, its CPU build, with Debian's torch) on the
cases of `sparta bench sparseconv`, on the same coordinates and weights.

Per case NAME, DIR holds NAME.coords.npy (int32 [N, 4]: batch, x, y, z),
NAME.extent.npy (the grid's extent), NAME.feats.npy and NAME.json. A layer:
NAME.weight.npy in sparta's layout [kx, ky, kz, Cin, Cout] (and
NAME.weight2.npy, the inverse layer's, when "inverse"), {"subm", "stride",
"padding", "dilation", "inverse"}. A network: {"net", "in_channels",
"num_classes", "params"} with each parameter in NAME.state/PARAM.npy, for
sparta.spconv_nets's definition. Times the case with its map cached where
spconv keeps it (a submanifold layer's on the tensor it returns; an inverse
layer's on its strided layer's output) after warm-up, and on a fresh tensor
(map built). Writes NAME.spconv.coords.npy and NAME.spconv.feats.npy (rows
sorted by batch, x, y, z) and prints one JSON object {NAME: {"ms",
"fresh_ms"}} on its last line.

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
    out = {}

    def median(fn):
        fn()
        ts = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1000)
        return statistics.median(ts)

    for name in a.cases.split(","):
        base = os.path.join(a.dir, name)
        spec = json.load(open(base + ".json"))
        coords = np.load(base + ".coords.npy")
        extent = [int(e) for e in np.load(base + ".extent.npy")]
        batch = int(coords[:, 0].max()) + 1 if len(coords) else 1
        idx = torch.from_numpy(coords)
        feats = torch.from_numpy(np.load(base + ".feats.npy"))

        def tensor():
            return sp.SparseConvTensor(feats, idx, extent, batch)

        res = {"ms": None}
        if "net" in spec:
            from sparta import spconv_nets
            net = (spconv_nets.minkunet(spec["in_channels"], spec["num_classes"]) if spec["net"] == "minkunet"
                   else spconv_nets.second_encoder(spec["in_channels"]))
            state = {p: torch.from_numpy(np.load(os.path.join(base + ".state", p + ".npy"))) for p in spec["params"]}
            net.load_state_dict(state, strict=False)

            def fresh():
                with torch.no_grad():
                    return net(tensor())

            first = fresh()
            res["fresh_ms"] = median(fresh)
        else:
            w = np.load(base + ".weight.npy")
            k = list(w.shape[:3])
            cin, cout = w.shape[3], w.shape[4]
            if spec["subm"]:
                layer = sp.SubMConv3d(cin, cout, k, stride=1, dilation=spec["dilation"], bias=False, indice_key="k")
            else:
                layer = sp.SparseConv3d(cin, cout, k, stride=spec["stride"], padding=spec["padding"],
                                        dilation=spec["dilation"], bias=False, indice_key="k")
            with torch.no_grad():
                # spconv 2.x keeps [Cout, kx, ky, kz, Cin]
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.transpose(4, 0, 1, 2, 3))))
            layer.eval()

            def fresh():
                with torch.no_grad():
                    return layer(tensor())

            first = fresh()
            res["fresh_ms"] = median(fresh)
            # spconv's map building alone: its index-pair routine, as the
            # layer calls it on the CPU (the native algorithm).
            from spconv.core import ConvAlgo
            from spconv.pytorch import ops

            def pairs():
                pad = [0, 0, 0] if spec["subm"] else list(spec["padding"])
                ops.get_indice_pairs(idx, batch, extent, ConvAlgo.Native, k, [1, 1, 1] if spec["subm"] else list(spec["stride"]),
                                     pad, list(spec["dilation"]), [0, 0, 0], subm=spec["subm"])

            res["map_ms"] = median(pairs)
            if spec.get("inverse"):
                w2 = np.load(base + ".weight2.npy")
                inv = sp.SparseInverseConv3d(w2.shape[3], w2.shape[4], k, bias=False, indice_key="k")
                with torch.no_grad():
                    inv.weight.copy_(torch.from_numpy(np.ascontiguousarray(w2.transpose(4, 0, 1, 2, 3))))
                inv.eval()

                def inverse():
                    with torch.no_grad():
                        return inv(first)

                res["fresh_ms"] = res["ms"] = median(inverse)
                first = inverse()
            elif spec["subm"]:
                # A submanifold layer's map is kept (under its indice_key) by
                # the tensor it returns, on the same sites: later calls on
                # that tensor reuse it, as a network's next layer does. A
                # strided layer builds its map on every call.
                cached_in = first.replace_feature(feats)

                def cached():
                    with torch.no_grad():
                        return layer(cached_in)

                res["ms"] = median(cached)
        c = first.indices.numpy().astype(np.int32)
        f = first.features.numpy()
        order = np.lexsort((c[:, 3], c[:, 2], c[:, 1], c[:, 0]))
        np.save(base + ".spconv.coords.npy", c[order])
        np.save(base + ".spconv.feats.npy", np.ascontiguousarray(f[order]))
        out[name] = res
    print(json.dumps(out))


if __name__ == "__main__":
    main()
