"""PyTorch helpers: sparta's pruners on torch.nn modules.

    import sparta.torch as st
    masks = st.prune(model, "block", 0.9, block="32x1")         # masks kept by forward pre-hooks
    pruner = st.GradualPruner(model, "unstructured", 0.9, start_step=0, end_step=1000, frequency=100)
    for step, (x, y) in enumerate(loader):
        loss(model(x), y).backward(); opt.step(); opt.zero_grad()
        pruner.step(step)                                      # Zhu & Gupta's cubic schedule
    st.export(model, (x[:1],), "model.onnx", tesa_out="model.json")

Weights are seen as sparta sees them, W[N,K] (rows = output features): a
Linear's weight as it is, a ConvNd's as [out_channels, in/groups * kernel].
Masks are applied by a forward pre-hook that zeroes the pruned weights
before every forward, so the optimizer may touch them but the model never
uses them, and the gradient stays dense (what RigL's regrowth reads).
Uses Debian's python3-torch (1.13).
"""
import contextlib
import hashlib
import io
import json
import math
import os
import sys
import time

import numpy as np
import torch

import sparta

__all__ = ["prunable_layers", "compute_masks", "apply_masks", "remove_masks", "prune", "cubic_sparsity",
           "GradualPruner", "RigL", "sensitivity", "export", "sparsity_of", "batches", "fine_tune", "accuracy",
           "fashion_mnist_tensors"]

_PRUNABLE = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


def prunable_layers(model, skip=()):
    """[(name, module)] of the model's Linear and ConvNd layers, less `skip`."""
    skip = set(skip)
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, _PRUNABLE) and n not in skip]
    unknown = skip - {n for n, _ in model.named_modules()}
    if unknown:
        raise sparta.Error(f"skip: the model has no layer named {sorted(unknown)[0]!r}")
    return layers


def _nk(module):
    w = module.weight.detach()
    return w.reshape(w.shape[0], -1).cpu().numpy().astype(np.float32, copy=False)


def _digest(a):
    return hashlib.sha1(np.ascontiguousarray(a, dtype=np.float32).tobytes()).hexdigest()


@contextlib.contextmanager
def _hooks_paused(model):
    """The masks applied, their hooks off (an export must not trace them)."""
    paused = []
    for m in model.modules():
        if hasattr(m, "_sparta_hook"):
            _mask_hook(m, None)
            m._sparta_hook.remove()
            paused.append(m)
    try:
        yield
    finally:
        for m in paused:
            m._sparta_hook = m.register_forward_pre_hook(_mask_hook)


def _channel_units(model, example_inputs, layers):
    """Tie units per output channel of each layer, from sparta's analysis of
    the model exported to ONNX (weights matched to modules by value)."""
    import onnx
    from onnx import numpy_helper

    buf = io.BytesIO()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _hooks_paused(model):
            torch.onnx.export(model, tuple(example_inputs), buf, opset_version=13, do_constant_folding=True)
    finally:
        model.train(was_training)
    data = buf.getvalue()
    ties = sparta._sparta.channel_ties(data)
    inits = {t.name: t for t in onnx.load_from_string(data).graph.initializer}
    by_value = {}
    for name, e in ties.items():
        if name not in inits:
            continue
        a = numpy_helper.to_array(inits[name]).astype(np.float32)
        a = a.T if e["transposed"] else a.reshape(e["rows"], -1)
        by_value[_digest(a)] = e["units"]
    units = {}
    for name, m in layers:
        u = by_value.get(_digest(_nk(m)))
        units[name] = u if u is not None else [-1] * m.weight.shape[0]
    return units


def compute_masks(model, pattern, sparsity=None, *, block=None, nm=None, tile=None, tile_row_share=0.0,
                  remainder=0.0, scope="layer", norm="l2", min_density=0.0, skip=(), use_gradients=False,
                  example_inputs=None):
    """{layer name: bool mask of the weight's shape} from sparta's pruners,
    for every Linear and ConvNd the pattern fits (sparta.fits) and not skipped.

    use_gradients: first-order scores |w * grad| from each weight's .grad
    (after a backward). The channel pattern needs example_inputs (the model
    is exported once to find which channels are tied)."""
    fit_args = dict(pattern=pattern, sparsity=sparsity, block=block, nm=nm, tile=tile, tile_row_share=tile_row_share,
                    remainder=remainder, scope=scope, norm=norm, min_density=min_density)
    layers = [(n, m) for n, m in prunable_layers(model, skip)
              if not sparta.fits(m.weight.shape[0], m.weight[0].numel(), **fit_args)]
    if not layers:
        raise sparta.Error(f"no Linear or Conv layer of the model fits the {pattern} pattern")
    units = None
    if pattern == "channel":
        if example_inputs is None:
            raise sparta.Error("the channel pattern needs example_inputs (to find the channels tied by residual adds)")
        units = _channel_units(model, example_inputs, layers)
        layers = [(n, m) for n, m in layers if any(u >= 0 for u in units[n])]  # else every channel must stay
        if not layers:
            raise sparta.Error("no layer of the model has output channels that can go (all are read by operators "
                               "that mix channels, or are outputs)")
    specs = []
    for name, m in layers:
        d = {"name": name, "w": _nk(m)}
        if use_gradients:
            if m.weight.grad is None:
                raise sparta.Error(f"use_gradients: {name}.weight has no gradient (run a backward first)")
            d["grad"] = m.weight.grad.detach().reshape(m.weight.shape[0], -1).cpu().numpy()
        if units is not None:
            d["channel_unit"] = units[name]
        specs.append(d)
    masks = sparta.compute_masks(specs, pattern=pattern, sparsity=sparsity, block=block, nm=nm, tile=tile,
                                 tile_row_share=tile_row_share, remainder=remainder, scope=scope, norm=norm,
                                 min_density=min_density)
    return {name: torch.from_numpy(k.astype(bool)).reshape(m.weight.shape) for (name, m), k in zip(layers, masks)}


def _mask_hook(module, _inputs):
    with torch.no_grad():
        module.weight.mul_(module.sparta_mask)


def apply_masks(model, masks):
    """Keeps each named layer's weight zero where its mask is False, from now
    on (a forward pre-hook); replaces a mask applied before."""
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        m = modules.get(name)
        if m is None or not hasattr(m, "weight"):
            raise sparta.Error(f"apply_masks: the model has no layer {name!r} with a weight")
        mask = torch.as_tensor(mask, dtype=m.weight.dtype, device=m.weight.device).reshape(m.weight.shape)
        if hasattr(m, "sparta_mask"):
            m.sparta_mask.copy_(mask)
        else:
            m.register_buffer("sparta_mask", mask, persistent=False)
            m._sparta_hook = m.register_forward_pre_hook(_mask_hook)
        _mask_hook(m, None)
    return masks


def remove_masks(model):
    """Drops the hooks; the pruned weights stay zero."""
    for m in model.modules():
        if hasattr(m, "_sparta_hook"):
            _mask_hook(m, None)
            m._sparta_hook.remove()
            del m._sparta_hook
            del m.sparta_mask


def prune(model, pattern, sparsity=None, **kwargs):
    """compute_masks, then apply_masks; returns the masks."""
    return apply_masks(model, compute_masks(model, pattern, sparsity, **kwargs))


def sparsity_of(model, skip=()):
    """Fraction of zeros over the prunable layers' weights."""
    zeros = total = 0
    for _, m in prunable_layers(model, skip):
        zeros += int((m.weight.detach() == 0).sum())
        total += m.weight.numel()
    return zeros / total if total else 0.0


def cubic_sparsity(step, final, initial=0.0, start_step=0, end_step=1):
    """Zhu & Gupta's schedule: s_t = s_f + (s_i - s_f)(1 - (t - t0)/(end - t0))^3, clamped to [t0, end]."""
    if end_step <= start_step:
        return final if step >= start_step else initial
    frac = min(max((step - start_step) / (end_step - start_step), 0.0), 1.0)
    return final + (initial - final) * (1.0 - frac) ** 3


class GradualPruner:
    """Prunes to the cubic schedule's sparsity every `frequency` steps
    between start_step and end_step (N:M has one sparsity: applied at
    start_step). Call step(t) after each optimizer step."""

    def __init__(self, model, pattern, final_sparsity=None, start_step=0, end_step=1000, frequency=100,
                 initial_sparsity=0.0, **kwargs):
        if frequency < 1:
            raise sparta.Error("GradualPruner: frequency must be at least 1")
        self.model, self.pattern, self.kwargs = model, pattern, kwargs
        self.final, self.initial = final_sparsity, initial_sparsity
        self.start, self.end, self.freq = start_step, end_step, frequency
        self.current = None
        self.masks = None

    def target(self, step):
        if self.pattern == "nm":
            return None
        return cubic_sparsity(step, self.final, self.initial, self.start, self.end)

    def step(self, step):
        """Prunes if this step is on the schedule; returns the sparsity now asked."""
        due = step >= self.start and ((step - self.start) % self.freq == 0 or step == self.end) and \
            (step <= self.end or self.current is None)
        if due:
            s = self.target(step)
            if self.pattern == "nm" and self.masks is not None:
                return self.current
            self.masks = prune(self.model, self.pattern, s, **self.kwargs)
            self.current = s
        return self.current


class RigL:
    """RigL (Evci et al. 2020) for unstructured sparsity: every `frequency`
    steps until end_step, each layer drops the fraction alpha_t (cosine-
    decayed from drop_fraction) of its active weights with the smallest
    magnitude and regrows as many inactive ones with the largest gradient
    (starting from zero); each layer keeps its sparsity. Call step(t) after
    loss.backward() and before optimizer.step()."""

    def __init__(self, model, sparsity, drop_fraction=0.3, end_step=1000, frequency=100, skip=(), scope="layer"):
        self.model, self.alpha, self.end, self.freq = model, drop_fraction, end_step, frequency
        self.masks = prune(model, "unstructured", sparsity, skip=skip, scope=scope)

    def step(self, step):
        if step == 0 or step % self.freq or step >= self.end:
            return 0
        alpha = self.alpha / 2 * (1 + math.cos(math.pi * step / self.end))
        modules = dict(self.model.named_modules())
        moved = 0
        for name, mask in self.masks.items():
            m = modules[name]
            if m.weight.grad is None:
                raise sparta.Error(f"RigL.step: {name}.weight has no gradient (call it after backward)")
            mask = mask.reshape(-1).clone()
            active = int(mask.sum())
            k = min(int(alpha * active), int((~mask).sum()))
            if k <= 0:
                continue
            w = m.weight.detach().reshape(-1).abs()
            drop = torch.topk(torch.where(mask, w, torch.full_like(w, float("inf"))), k, largest=False).indices
            g = m.weight.grad.detach().reshape(-1).abs()
            grow = torch.topk(torch.where(mask, torch.full_like(g, -1.0), g), k).indices
            mask[drop] = False
            mask[grow] = True
            with torch.no_grad():
                m.weight.view(-1)[grow] = 0.0
            self.masks[name] = mask.reshape(m.weight.shape)
            moved += k
        apply_masks(self.model, self.masks)
        return moved


def sensitivity(model, evaluate, pattern="unstructured", sparsities=(0.5, 0.75, 0.9), layers=None, **kwargs):
    """{layer: [(sparsity, evaluate(model))]}: each layer pruned alone at each
    sparsity, the others untouched; the model is restored after each."""
    names = [n for n, _ in prunable_layers(model)] if layers is None else list(layers)
    modules = dict(model.named_modules())
    out = {}
    for name in names:
        m = modules[name]
        saved = m.weight.detach().clone()
        out[name] = []
        for s in sparsities:
            (k,) = sparta.compute_masks([{"name": name, "w": _nk(m)}], pattern=pattern, sparsity=s, **kwargs)
            with torch.no_grad():
                m.weight.mul_(torch.from_numpy(k).reshape(m.weight.shape).to(m.weight.dtype))
            out[name].append((s, evaluate(model)))
            with torch.no_grad():
                m.weight.copy_(saved)
    return out


def export(model, example_inputs, path, tesa_out=None, input_names=None, output_names=None, dynamic_axes=None,
           opset=13):
    """The model (its pruned weights zero) to ONNX at `path`, and with
    tesa_out the zeros of every MatMul/Gemm/Conv weight as a TeSA spec
    (masks as .npy in "<spec>_masks/"); through temporary names."""
    import onnx
    from onnx import numpy_helper

    path = os.fspath(path)
    was_training = model.training
    model.eval()
    tmp = path + f".tmp.{os.getpid()}"
    try:
        with torch.no_grad(), _hooks_paused(model):
            torch.onnx.export(model, tuple(example_inputs), tmp, opset_version=opset, do_constant_folding=True,
                              input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes)
        if tesa_out is not None:
            _write_spec(onnx.load(tmp), numpy_helper, os.fspath(tesa_out))
        os.replace(tmp, path)
    finally:
        model.train(was_training)
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _write_spec(m, numpy_helper, spec_path):
    weights = {n.input[1] for n in m.graph.node if n.op_type in ("MatMul", "Gemm", "Conv") and len(n.input) > 1}
    stem = os.path.splitext(os.path.basename(spec_path))[0] + "_masks"
    folder = os.path.join(os.path.dirname(spec_path) or ".", stem)
    tmp_folder = folder + f".tmp.{os.getpid()}"
    os.makedirs(tmp_folder, exist_ok=True)
    spec = {"version": 1, "tensors": {}}
    for i, t in enumerate(m.graph.initializer):
        if t.name not in weights:
            continue
        a = numpy_helper.to_array(t)
        if a.dtype != np.float32 or a.ndim < 2 or not (a == 0).any():
            continue
        fname = f"{i}_" + "".join(c if c.isalnum() else "_" for c in t.name)[:100] + ".npy"
        np.save(os.path.join(tmp_folder, fname), (a != 0).astype(np.uint8))
        spec["tensors"][t.name] = {"mask": f"{stem}/{fname}"}
    with open(spec_path + ".tmp", "w") as f:
        json.dump(spec, f, indent=1)
    if os.path.isdir(folder):
        import shutil
        shutil.rmtree(folder)
    os.replace(tmp_folder, folder)
    os.replace(spec_path + ".tmp", spec_path)


def batches(x, y, batch_size=128, shuffle=True, seed=0):
    """A re-iterable of (x, y) minibatches of two tensors (a new order each pass)."""
    class _Batches:
        def __init__(self):
            self.epoch = 0

        def __len__(self):
            return (len(x) + batch_size - 1) // batch_size

        def __iter__(self):
            g = torch.Generator().manual_seed(seed + self.epoch)
            self.epoch += 1
            order = torch.randperm(len(x), generator=g) if shuffle else torch.arange(len(x))
            for i in range(0, len(x), batch_size):
                idx = order[i:i + batch_size]
                yield x[idx], y[idx]
    return _Batches()


def fine_tune(model, data, epochs=1, lr=1e-3, pruner=None, loss_fn=None, verbose=True, log=None):
    """Trains with Adam for `epochs` passes over `data` (re-iterable (x, y)
    batches, e.g. batches() or a DataLoader); calls pruner.step(step) after
    each optimizer step (GradualPruner; RigL is called before it). One line
    per epoch with the loss, the sparsity and an ETA; verbose=False: none."""
    loss_fn = loss_fn or torch.nn.functional.cross_entropy
    log = log or sys.stderr
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    step, t0 = 0, time.time()
    for epoch in range(epochs):
        total, n = 0.0, 0
        for xb, yb in data:
            masked = [m for m in model.modules() if hasattr(m, "_sparta_hook")]
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            if isinstance(pruner, RigL):
                pruner.step(step)
            opt.step()
            for m in masked:  # the pruned weights the step moved back to zero at once
                _mask_hook(m, None)
            if pruner is not None and not isinstance(pruner, RigL):
                pruner.step(step)
            total, n, step = total + float(loss) * len(xb), n + len(xb), step + 1
        if verbose:
            spent = time.time() - t0
            eta = spent / (epoch + 1) * (epochs - epoch - 1)
            print(f"  epoch {epoch + 1}/{epochs}: loss {total / max(n, 1):.4f}, sparsity {sparsity_of(model):.3f}, "
                  f"{spent:.0f} s, eta {eta:.0f} s", file=log, flush=True)
    model.eval()
    return model


def accuracy(predict, x, y, batch_size=1000):
    """Top-1 accuracy of predict(batch) -> logits (a torch model, or a
    function of numpy batches such as a compiled sparta model's run)."""
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            out = predict(xb)
            out = out if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))
            correct += int((out.argmax(1) == torch.as_tensor(np.asarray(y[i:i + batch_size]))).sum())
    return correct / len(x)


def fashion_mnist_tensors(split="train", limit=None, root=None):
    """Fashion-MNIST (sparta.datasets) as float32 [N, 1, 28, 28] tensors,
    normalized (mean 0.2860, std 0.3530), and int64 labels [N]."""
    from sparta.datasets import fashion_mnist
    x, y = fashion_mnist(split, root)
    if limit:
        x, y = x[:limit], y[:limit]
    x = (torch.from_numpy(x.astype(np.float32) / 255.0) - 0.2860) / 0.3530
    return x.unsqueeze(1).contiguous(), torch.from_numpy(y.astype(np.int64))
