#!/usr/bin/python3
"""Plot a sparsity sweep: speedup of each sparse format over oneDNN dense.

Usage: plot_sweep.py SWEEP.json OUT.png [--title TEXT]

SWEEP.json is a list of records with keys
  format   "csr", "bsr", "nm", "tilewise", "structured", "dense"
  block    e.g. "32x1" or ""          nm   e.g. "2:4" or ""
  density  kept fraction of W         m, k, n, threads   ints
  speedup  dense time / sparse time
  eigen_ms, xsmm_ms, dense_ms   optional (absent or null)

One subplot per weight shape (k, n); x = sparsity (1 - density) in percent,
y = speedup over dense on a log scale. One line per format variant
("bsr 32x1", "nm 2:4", "csr"), plus the peers "eigen csr" and
"libxsmm spmdm" (dense_ms / peer ms, from csr records that carry them),
the break-even line at 1 and the ideal 1/density curve. When a shape was
measured at several batch sizes m or thread counts, each line is also split
by them. Repeated measurements of one point are reduced to their median.
"""

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

PEERS = ("eigen csr", "libxsmm spmdm")
FORMAT_ORDER = ["dense", "csr", "bsr", "nm", "tilewise", "structured"]


def text(v):
    return "" if v is None else str(v).strip()


def positive(v):
    """v as a float if it is a positive finite number, else None."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def variant_label(r):
    parts = [text(r.get("format")) or "?"]
    if text(r.get("block")):
        parts.append(text(r["block"]))
    if text(r.get("nm")):
        parts.append(text(r["nm"]))
    return " ".join(parts)


def variant_sort_key(label):
    if label in PEERS:
        return (len(FORMAT_ORDER) + 1, PEERS.index(label), label)
    fmt = label.split(" ")[0]
    rank = FORMAT_ORDER.index(fmt) if fmt in FORMAT_ORDER else len(FORMAT_ORDER)
    return (rank, 0, label)


def load(path):
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, list):
        sys.exit(f"{path}: expected a JSON list of records")
    return data


def collect(records):
    """Returns {(k, n): {(label, m, threads): {sparsity%: [speedups]}}}."""
    points = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    skipped = 0
    for r in records:
        try:
            k, n, m = int(r["k"]), int(r["n"]), int(r["m"])
            threads = int(r.get("threads") or 1)
            density = float(r["density"])
        except (KeyError, TypeError, ValueError):
            skipped += 1
            continue
        if not 0 < density <= 1:
            skipped += 1
            continue
        sparsity = round(100.0 * (1.0 - density), 6)
        shape = points[(k, n)]
        speedup = positive(r.get("speedup"))
        if speedup is not None:
            shape[(variant_label(r), m, threads)][sparsity].append(speedup)
        else:
            skipped += 1
        if text(r.get("format")) == "csr":
            dense_ms = positive(r.get("dense_ms"))
            for key, label in (("eigen_ms", PEERS[0]), ("xsmm_ms", PEERS[1])):
                peer_ms = positive(r.get(key))
                if dense_ms is not None and peer_ms is not None:
                    shape[(label, m, threads)][sparsity].append(dense_ms / peer_ms)
    if skipped:
        print(f"plot_sweep: skipped {skipped} record(s) without a usable speedup", file=sys.stderr)
    return points


def style_for(labels):
    """A fixed color and marker per variant, shared by all subplots."""
    # tab10 without its gray (index 7), which the peers and the ideal use.
    tab10 = plt.get_cmap("tab10").colors
    palette = [c for i, c in enumerate(tab10) if i != 7]
    if len(labels) > len(palette) + len(PEERS):
        palette += [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i % 2 == 1 and i != 15]
    markers = "osD^v<>ph*"
    styles = {}
    i = 0
    for label in labels:
        if label == PEERS[0]:
            styles[label] = dict(color="black", marker="x", linestyle="-.", linewidth=1.6)
        elif label == PEERS[1]:
            styles[label] = dict(color="dimgray", marker="+", linestyle="-.", linewidth=1.6, markersize=9)
        else:
            styles[label] = dict(color=palette[i % len(palette)], marker=markers[i % len(markers)], linestyle="-",
                                 linewidth=1.6)
            i += 1
    return styles


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sweep", help="sweep results (JSON list)")
    ap.add_argument("out", help="output PNG")
    ap.add_argument("--title", default=None, help="figure title")
    args = ap.parse_args()

    points = collect(load(args.sweep))
    if not points:
        sys.exit(f"{args.sweep}: no usable records")

    shapes = sorted(points)
    labels = sorted({key[0] for shape in points.values() for key in shape}, key=variant_sort_key)
    styles = style_for(labels)
    all_m = sorted({key[1] for shape in points.values() for key in shape})
    all_threads = sorted({key[2] for shape in points.values() for key in shape})
    split_m = len(all_m) > 1
    split_threads = len(all_threads) > 1
    # Line style variations for the extra splits (m, threads), when present.
    split_values = sorted({(key[1], key[2]) for shape in points.values() for key in shape})
    dash_for = {}
    dashes = ["-", "--", ":", (0, (5, 1, 1, 1))]
    for i, v in enumerate(split_values):
        dash_for[v] = dashes[i % len(dashes)]

    ncols = min(3, len(shapes))
    nrows = math.ceil(len(shapes) / ncols)
    width = max(5.6 * ncols, 10.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 4.4 * nrows), squeeze=False, sharey=True)

    ymin, ymax = math.inf, 0.0
    for idx, (k, n) in enumerate(shapes):
        ax = axes[idx // ncols][idx % ncols]
        shape = points[(k, n)]
        sparsities = sorted({s for series in shape.values() for s in series})
        keys = sorted(shape, key=lambda key: (variant_sort_key(key[0]), key[1], key[2]))
        for label, m, threads in keys:
            series = shape[(label, m, threads)]
            xs = sorted(series)
            ys = [statistics.median(series[x]) for x in xs]
            ymin, ymax = min(ymin, min(ys)), max(ymax, max(ys))
            st = dict(styles[label])
            if split_m or split_threads:
                st["linestyle"] = dash_for[(m, threads)]
            ax.plot(xs, ys, markersize=st.pop("markersize", 6), **st)

        # Ideal: time proportional to the kept fraction, speedup 1/density.
        lo, hi = min(sparsities), max(sparsities)
        if hi > lo:
            grid = [lo + (hi - lo) * i / 200 for i in range(201)]
        else:
            grid = [lo]
        ideal = [1.0 / (1.0 - s / 100.0) for s in grid]
        ax.plot(grid, ideal, color="gray", linestyle=":", linewidth=1.8)
        ymax = max(ymax, max(ideal))
        ax.axhline(1.0, color="red", linestyle="--", linewidth=1.2, alpha=0.8)

        title = f"K={k}, N={n}"
        ms = sorted({key[1] for key in shape})
        ths = sorted({key[2] for key in shape})
        if len(ms) == 1:
            title += f", M={ms[0]}"
        if split_threads and len(ths) == 1:
            title += f", {ths[0]} thread{'s' if ths[0] != 1 else ''}"
        ax.set_title(title, fontsize=11)
        ax.set_yscale("log")
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
        ax.set_xlabel("sparsity of W (%)")
        if idx % ncols == 0:
            ax.set_ylabel("speedup vs oneDNN dense (x)")
        # Measured densities differ from the requested ones in the last digits
        # (whole blocks, rounding): label the requested grid, once each.
        ticks = sorted({round(s) for s in sparsities})
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:d}" for t in ticks], rotation=45 if len(ticks) > 8 else 0)

    for idx in range(len(shapes), nrows * ncols):
        axes[idx // ncols][idx % ncols].set_visible(False)

    # Shared log axis covering every line, break-even and the ideal curve.
    ymin = min(ymin, 1.0) / 1.3
    ymax = max(ymax, 1.0) * 1.3
    for row in axes:
        for ax in row:
            ax.set_ylim(ymin, ymax)
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())

    handles = []
    for label in labels:
        st = dict(styles[label])
        ms = st.pop("markersize", 6)
        if split_m or split_threads:
            st["linestyle"] = "-"  # the line style tells the split apart
        handles.append(Line2D([], [], markersize=ms, label=label, **st))
    if split_m or split_threads:
        for m, threads in split_values:
            parts = []
            if split_m:
                parts.append(f"M={m}")
            if split_threads:
                parts.append(f"{threads} thread{'s' if threads != 1 else ''}")
            handles.append(Line2D([], [], color="black", linestyle=dash_for[(m, threads)], label=", ".join(parts)))
    handles.append(Line2D([], [], color="red", linestyle="--", label="break-even (1x)"))
    handles.append(Line2D([], [], color="gray", linestyle=":", linewidth=1.8, label="ideal 1/density"))
    ncol_legend = min(len(handles), max(3, int(width / 1.9)))
    fig.legend(handles=handles, loc="lower center", ncol=ncol_legend, frameon=False, fontsize=9,
               bbox_to_anchor=(0.5, 0.0))

    title = args.title or "fp32 sparse x dense, Y = X W^T: speedup over oneDNN dense"
    if not split_threads:
        title += f" ({all_threads[0]} thread{'s' if all_threads[0] != 1 else ''})"
    fig.suptitle(title, fontsize=13)
    legend_rows = math.ceil(len(handles) / ncol_legend)
    fig.tight_layout(rect=(0, 0.045 * legend_rows + 0.02 / nrows, 1, 0.95))
    fig.savefig(args.out, dpi=130)
    print(f"plot_sweep: wrote {args.out} ({len(shapes)} shape(s), {len(labels)} line kind(s))")


if __name__ == "__main__":
    main()
