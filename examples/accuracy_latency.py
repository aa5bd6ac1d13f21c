#!/usr/bin/env python3
"""The accuracy-latency loop on real data: Fashion-MNIST (Debian's
dataset-fashion-mnist, read from its files), a small CNN and an MLP trained
here on the CPU; for each pattern and sparsity: prune gradually while
fine-tuning (sparta.torch, Zhu & Gupta's cubic schedule), export to ONNX,
compile with sparta, and measure test accuracy and batch-1 latency of
sparta, ONNX Runtime (dense, on the same file) and PyTorch in the same run
(warm-up, interleaved rounds, medians). Writes OUT/results.json,
OUT/results.md and OUT/frontier.png (accuracy against sparta's latency).

  .venv/bin/python examples/accuracy_latency.py            # the full table (about 15-25 min on 2 cores)
  .venv/bin/python examples/accuracy_latency.py --fast     # CI: a subset, fewer epochs, asserts

--fast trains on 8000 images for one epoch, prunes a subset of the cases
with one fine-tuning epoch, and fails (exit 1) unless every model's test
accuracy is far above chance (> 50%, chance is 10%), sparta's accuracy is
PyTorch's, and every pruned layer has the density and the pattern asked.
"""
import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import torch

import sparta
import sparta.torch as st


class Cnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = torch.nn.Linear(64 * 7 * 7, 256)
        self.fc2 = torch.nn.Linear(256, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = torch.nn.Linear(784, 512), torch.nn.Linear(512, 512), torch.nn.Linear(512, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


MODELS = {"cnn": Cnn, "mlp": Mlp}
# The first convolution (9 weights per filter) and the classifier stay
# dense, as is usual; the patterns prune every other layer they fit.
SKIP = {"cnn": ["conv1", "fc2"], "mlp": ["fc3"]}
# (label, sparta.torch options, sparsities)
CASES = [
    ("unstructured", {"pattern": "unstructured"}, [0.5, 0.75, 0.9]),
    ("block 32x1", {"pattern": "block", "block": "32x1"}, [0.5, 0.75, 0.9]),
    ("block 1x32", {"pattern": "block", "block": "1x32"}, [0.5, 0.75, 0.9]),
    ("nm 2:4", {"pattern": "nm", "nm": "2:4"}, [0.5]),
    ("tilewise G=64", {"pattern": "tilewise", "tile": 64}, [0.5, 0.75, 0.9]),
    ("channel", {"pattern": "channel"}, [0.5, 0.75]),
]
FAST_CASES = {("unstructured", 0.9), ("block 32x1", 0.75), ("nm 2:4", 0.5), ("tilewise G=64", 0.75), ("channel", 0.5)}


def pattern_ok(model, skip, opts, sparsity):
    """Every pruned layer's density and pattern, as sparta's analysis sees them."""
    problems = []
    for name, m in st.prunable_layers(model, skip):
        w = m.weight.detach().reshape(m.weight.shape[0], -1).numpy()
        fit = sparta.fits(w.shape[0], w.shape[1], sparsity=sparsity, **opts)
        if fit:
            continue
        p = sparta.pattern_of(w)
        want = 1 - sparsity
        pat = opts["pattern"]
        if pat == "channel":
            ok = p["density"] <= want + 0.02 + 1.0 / w.shape[0] and p["kept_rows"] * w.shape[1] >= p["density"] * w.size - 1
        else:
            ok = abs(p["density"] - want) <= 0.02
        if pat == "block":
            ok = ok and opts["block"] in p["blocks"]
        elif pat == "nm":
            ok = ok and any(int(a) * 4 <= 2 * int(b) for a, b in (s.split(":") for s in p["nm"]))
        elif pat == "tilewise":
            ok = ok and any(opts["tile"] % g == 0 or g % opts["tile"] == 0 for g in p["tiles"])
        if not ok:
            problems.append(f"{name}: {p['summary']} (asked {pat} at density {want:.2f})")
    return problems


def latencies(sm, path, torch_model, x1, threads, reps):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {"x": x1.numpy()}
    torch.set_num_threads(threads)
    runs = {"sparta": lambda: sm.run(feed), "ort": lambda: sess.run(None, feed),
            "torch": lambda: torch_model(x1)}
    times = {k: [] for k in runs}
    with torch.no_grad():
        for f in runs.values():
            for _ in range(5):
                f()
        for _ in range(3):  # interleaved rounds
            for k, f in runs.items():
                for _ in range(max(1, reps // 3)):
                    t0 = time.perf_counter()
                    f()
                    times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: float(np.median(v)) for k, v in times.items()}


def evaluate(label, sparsity, model, skip, opts, out, xte, yte, args, dense_acc):
    x1 = xte[:1]
    tag = label.replace(" ", "-").replace(":", "-").replace("=", "") + (f"-{int(sparsity * 100)}" if sparsity else "")
    path = os.path.join(out, f"{args.model_name}-{tag}.onnx")
    st.export(model, (x1,), path, input_names=["x"], output_names=["logits"],
              dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    sm = sparta.compile(path, threads=args.threads, shapes={"x": [1, 1, 28, 28]})
    acc = st.accuracy(lambda b: sm.run({"x": b.numpy()})["logits"], xte, yte)
    acc_torch = st.accuracy(model, xte, yte)
    ms = latencies(sm, path, model, x1, args.threads, args.reps)
    row = {"model": args.model_name, "pattern": label, "sparsity": sparsity, "achieved": st.sparsity_of(model, skip),
           "accuracy": acc, "accuracy_torch": acc_torch,
           "delta_points": None if dense_acc is None else 100 * (acc - dense_acc),
           "sparta_ms": ms["sparta"], "ort_ms": ms["ort"], "torch_ms": ms["torch"],
           "speedup_vs_ort": ms["ort"] / ms["sparta"], "file": os.path.basename(path),
           "problems": [] if not opts else pattern_ok(model, skip, opts, sparsity)}
    if abs(acc - acc_torch) > 0.002:
        row["problems"].append(f"sparta's accuracy {acc:.4f} differs from PyTorch's {acc_torch:.4f}")
    delta = "dense" if dense_acc is None else f"{row['delta_points']:+.2f} pt"
    print(f"{args.model_name:4} {label:14} {sparsity:4.2f}: accuracy {100 * acc:5.2f}% ({delta}), "
          f"sparta {ms['sparta']:.3f} ms, ORT {ms['ort']:.3f} ms ({row['speedup_vs_ort']:.2f}x), "
          f"PyTorch {ms['torch']:.3f} ms", flush=True)
    return row


def write_outputs(rows, out, args):
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"threads": args.threads, "fast": args.fast, "host": os.uname().machine, "rows": rows}, f, indent=1)
    lines = ["| model | pattern | sparsity | accuracy | vs dense | sparta ms | ORT ms (dense) | PyTorch ms | "
             "sparta vs ORT |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        delta = "—" if r["delta_points"] is None else f"{r['delta_points']:+.2f} pt"
        lines.append(f"| {r['model']} | {r['pattern']} | {r['sparsity']:.2f} | {100 * r['accuracy']:.2f}% | {delta} | "
                     f"{r['sparta_ms']:.3f} | {r['ort_ms']:.3f} | {r['torch_ms']:.3f} | {r['speedup_vs_ort']:.2f}x |")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no frontier.png", file=sys.stderr)
        return
    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.8), squeeze=False)
    for ax, model in zip(axes[0], models):
        rs = [r for r in rows if r["model"] == model]
        for label in dict.fromkeys(r["pattern"] for r in rs):
            pts = [r for r in rs if r["pattern"] == label]
            ax.plot([r["sparta_ms"] for r in pts], [100 * r["accuracy"] for r in pts], "o-", label=label)
        dense = next(r for r in rs if r["pattern"] == "dense")
        ax.plot([dense["ort_ms"]], [100 * dense["accuracy"]], "k*", ms=12, label="dense, ONNX Runtime")
        ax.set_xscale("log")
        ax.set_xlabel("batch-1 latency, ms (sparta; log)")
        ax.set_ylabel("test accuracy, %")
        ax.set_title(f"Fashion-MNIST {model}: accuracy vs measured latency")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "frontier.png"), dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fast", action="store_true", help="CI: a subset, fewer epochs, and checks")
    ap.add_argument("--out", default="out/accuracy_latency")
    ap.add_argument("--models", default="cnn,mlp")
    ap.add_argument("--epochs", type=int, default=None, help="dense training epochs (default 6, fast 1)")
    ap.add_argument("--ft-epochs", type=int, default=None, help="fine-tuning epochs while pruning (default 3, fast 1)")
    ap.add_argument("--threads", type=int, default=1, help="threads for every engine's latency")
    ap.add_argument("--train-threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--reps", type=int, default=60, help="timed runs per engine")
    args = ap.parse_args()
    epochs = args.epochs or (1 if args.fast else 6)
    ft_epochs = args.ft_epochs or (1 if args.fast else 3)
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in MODELS:
            ap.error(f"--models: unknown model {m!r} (cnn, mlp)")
    os.makedirs(args.out, exist_ok=True)
    xtr, ytr = st.fashion_mnist_tensors("train", 8000 if args.fast else None)
    xte, yte = st.fashion_mnist_tensors("test", 2000 if args.fast else None)
    print(f"Fashion-MNIST: {len(xtr)} training and {len(xte)} test images; dense {epochs} epoch(s), "
          f"{ft_epochs} fine-tuning epoch(s) per case", flush=True)
    rows, failures = [], []
    for name in models:
        args.model_name = name
        torch.manual_seed(0)
        torch.set_num_threads(args.train_threads)
        dense = MODELS[name]()
        print(f"{name}: training dense", flush=True)
        st.fine_tune(dense, st.batches(xtr, ytr, 128), epochs=epochs, lr=1e-3)
        rows.append(evaluate("dense", 0.0, dense, SKIP[name], None, args.out, xte, yte, args, None))
        dense_acc = rows[-1]["accuracy"]
        for label, opts, sparsities in CASES:
            for s in sparsities:
                if args.fast and (label, s) not in FAST_CASES:
                    continue
                torch.set_num_threads(args.train_threads)
                model = copy.deepcopy(dense)
                data = st.batches(xtr, ytr, 128, seed=1)
                steps = ft_epochs * len(data)
                kw = dict(opts, skip=SKIP[name])
                if opts["pattern"] == "channel":
                    kw["example_inputs"] = (xte[:1],)
                pattern = kw.pop("pattern")
                pruner = st.GradualPruner(model, pattern, None if pattern == "nm" else s, start_step=0,
                                          end_step=max(1, int(0.7 * steps)), frequency=max(1, steps // 20), **kw)
                st.fine_tune(model, data, epochs=ft_epochs, lr=5e-4, pruner=pruner, verbose=not args.fast)
                st.remove_masks(model)
                rows.append(evaluate(label, s, model, SKIP[name], opts, args.out, xte, yte, args, dense_acc))
                failures += [f"{name} {label} {s}: {p}" for p in rows[-1]["problems"]]
        for r in rows:
            if r["model"] == name and r["accuracy"] < 0.5:
                failures.append(f"{name} {r['pattern']} {r['sparsity']}: accuracy {r['accuracy']:.3f}, not far above chance")
    write_outputs(rows, args.out, args)
    print(f"wrote {args.out}/results.md, results.json, frontier.png")
    if failures:
        for f in failures:
            print(f"FAIL: {f}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
