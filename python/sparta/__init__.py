"""sparta: pruned and quantized models, fast on CPUs.

    import sparta
    sparta.prune("model.onnx", "pruned.onnx", pattern="block", block="32x1", sparsity=0.9)
    model = sparta.compile("pruned.onnx", threads=1)
    outputs = model.run({"input_ids": ids, "attention_mask": mask})   # numpy in, numpy out
    model.save("pruned.sparta"); model = sparta.load("pruned.sparta")
    model.report()                                                     # per layer: pattern, kernel, times

Errors are sparta.Error (a RuntimeError) carrying sparta's one-line
message; a missing file is FileNotFoundError. sparta.torch has the PyTorch
helpers (masks on nn.Modules, gradual pruning, RigL, sensitivity, export).
"""
import errno
import json
import os

from . import _sparta, datasets  # noqa: F401 (sparta.datasets)
from .sparse import SparseTensor, sparse_conv3d, sparse_inverse_conv3d
from . import nn  # noqa: F401,E402 (sparta.nn)

__all__ = ["Error", "Model", "PruneResult", "SparseTensor", "compile", "load", "prune", "compute_masks", "fits", "pattern_of",
           "sparse_conv3d", "sparse_inverse_conv3d", "version"]

Error = _sparta.Error


def version():
    """sparta's version string."""
    return _sparta.version()


def _existing(path, what):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, f"{what} not found", path)
    return path


class Model:
    """A compiled model: run it on numpy arrays, save it, read its report."""

    def __init__(self, impl):
        self._m = impl

    def run(self, feeds):
        """feeds: {input name: numpy array}; returns {output name: numpy array}."""
        if not isinstance(feeds, dict):
            raise TypeError("Model.run takes a dict {input name: numpy array}")
        return self._m.run(feeds)

    __call__ = run

    def save(self, path):
        """Writes a .sparta file (through a temporary name: nothing half-written)."""
        self._m.save(os.fspath(path))

    def report(self):
        """The compile report: per layer density, shape, pattern, kernel, measured times; totals."""
        return json.loads(self._m.report_json())

    @property
    def inputs(self):
        """[(name, dtype, shape)] with -1 for a symbolic extent."""
        return [tuple(x) for x in self._m.inputs()]

    @property
    def outputs(self):
        return [tuple(x) for x in self._m.outputs()]

    def kernels(self):
        """{node name: the kernel chosen for it}."""
        return dict(self._m.kernels())

    def benchmark(self, feeds, reps=50, warmup=5):
        """Median milliseconds of run(feeds) over `reps` runs after `warmup`."""
        import time
        for _ in range(warmup):
            self._m.run(feeds)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            self._m.run(feeds)
            times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        return times[len(times) // 2]


def compile(model, tesa=None, threads=1, dense=False, jit=True, shapes=None):
    """Compiles an ONNX model (a path, or its bytes) into a Model.

    tesa: a TeSA spec (JSON path) with masks and bit-widths per tensor;
    threads: kernels are chosen by measured time for this many threads;
    dense: ignore sparsity (the dense baseline); jit: allow kernels
    generated for each weight's pattern; shapes: {input: [extents]} for
    inputs with symbolic dims (kernels are chosen there; other shapes run too).
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        source, is_path = bytes(model), False
    else:
        source, is_path = _existing(model, "ONNX model"), True
    if tesa is not None:
        tesa = _existing(tesa, "TeSA spec")
    shapes = {k: [int(d) for d in v] for k, v in (shapes or {}).items()}
    return Model(_sparta.compile(source, tesa or "", int(threads), bool(dense), bool(jit), shapes, is_path))


def load(path, threads=0):
    """Loads a compiled .sparta model (threads 0: the count it was compiled for)."""
    return Model(_sparta.load(_existing(path, "compiled model"), int(threads)))


class PruneResult(dict):
    """What sparta.prune did: ["layers"] (per weight: density before and
    after, the pattern sparta sees, or why it was skipped), ["params"],
    ["zero_params"], ["model"] (the pruned ONNX bytes)."""

    def __str__(self):
        return self["text"]

    @property
    def sparsity(self):
        return self["zero_params"] / self["params"] if self["params"] else 0.0


def prune(model, output=None, *, pattern="unstructured", sparsity=None, block=None, nm=None, tile=None,
          tile_row_share=0.0, remainder=0.0, scope="layer", norm="l2", skip=(), min_density=0.0, tesa_out=None,
          gradients=None, target_speedup=None, threads=1, verbose=True):
    """Prunes an ONNX model (path or bytes) as `sparta prune` does.

    pattern: unstructured, block (block="RxC", R output x C input features),
    nm (nm="N:M" along the input features; sparsity is 1 - N/M), tilewise
    (tile=G rows per tile, tile_row_share, remainder) or channel (whole
    output channels, tied ones together); scope: layer or global; skip:
    weight or node names; gradients: {weight name: array in the weight's
    ONNX layout} for first-order scores |w * g|. Writes `output` (and the
    masks as a TeSA spec at `tesa_out`) when given; returns a PruneResult.

    target_speedup=S instead chooses each layer's pattern and sparsity so
    that sparta runs the model S times faster than unpruned (measured on
    `threads` threads) at the least estimated accuracy loss; the result
    then also has "unpruned_ms", "estimated_ms", "measured_ms", "speedup"
    and each layer's "note" (its choice and why).
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, what = bytes(model), "<bytes>"
    else:
        what = _existing(model, "ONNX model")
        with open(what, "rb") as f:
            data = f.read()
    if tesa_out is not None and output is None:
        raise ValueError("tesa_out needs output (the pruned model's path)")
    if isinstance(skip, str):
        skip = [skip]
    if target_speedup is not None:
        given = [k for k, v in (("sparsity", sparsity), ("block", block), ("nm", nm), ("tile", tile)) if v is not None]
        if given or pattern != "unstructured":
            raise ValueError(f"target_speedup chooses the pattern per layer: leave out {given or ['pattern']}")
        r = PruneResult(_sparta.prune_to_speedup(data, what, float(target_speedup), int(threads), list(skip),
                                                 os.fspath(output) if output is not None else "",
                                                 os.fspath(tesa_out) if tesa_out is not None else "", bool(verbose)))
        if verbose:
            print(r["text"], end="")
        return r
    options = _options(pattern, sparsity, block, nm, tile, tile_row_share, remainder, scope, norm, min_density)
    options["skip"] = list(skip)
    r = PruneResult(_sparta.prune(data, what, options, dict(gradients or {}),
                                  os.fspath(output) if output is not None else "",
                                  os.fspath(tesa_out) if tesa_out is not None else ""))
    if verbose:
        print(r["text"], end="")
    return r


def _options(pattern, sparsity, block, nm, tile, tile_row_share, remainder, scope, norm, min_density):
    if isinstance(block, (tuple, list)):
        block = "x".join(str(int(v)) for v in block)
    if isinstance(nm, (tuple, list)):
        nm = ":".join(str(int(v)) for v in nm)
    return {"pattern": pattern, "sparsity": sparsity, "block": block, "nm": nm, "tile": tile,
            "tile_row_share": tile_row_share, "remainder": remainder, "scope": scope, "norm": norm,
            "min_density": min_density}


def fits(rows, cols, *, pattern="unstructured", sparsity=None, block=None, nm=None, tile=None, tile_row_share=0.0,
         remainder=0.0, scope="layer", norm="l2", min_density=0.0):
    """"" when the pattern fits a W[rows, cols] weight, else why not."""
    return _sparta.fits(int(rows), int(cols), _options(pattern, sparsity, block, nm, tile, tile_row_share, remainder,
                                                       scope, norm, min_density))


def pattern_of(w):
    """What sparta's pattern analysis sees in a weight W[N,K] (its zeros):
    {"summary", "best", "density", "blocks": ["32x1", ...], "nm": ["2:4", ...], "tiles": [G, ...], ...}."""
    return _sparta.pattern_of(w)


def compute_masks(layers, *, pattern="unstructured", sparsity=None, block=None, nm=None, tile=None,
                  tile_row_share=0.0, remainder=0.0, scope="layer", norm="l2", min_density=0.0):
    """Masks (uint8, 1 = kept) for weights given as W[N,K] arrays (rows =
    output features): layers is [{"name", "w", optional "grad",
    optional "channel_unit" (per row; equal ids are pruned together)}]."""
    return _sparta.compute_masks(list(layers), _options(pattern, sparsity, block, nm, tile, tile_row_share,
                                                        remainder, scope, norm, min_density))
