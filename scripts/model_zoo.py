#!/usr/bin/python3
"""Builds the model zoo from its definitions (fixed seeds, random weights: no
hub downloads) and exports each model to ONNX with one sample input per graph
input, for sparta's correctness checks and benchmarks.

  /usr/bin/python3 scripts/model_zoo.py [--out models] [--small] [--only NAME ...]

Writes OUT/NAME.onnx, OUT/NAME.pt (TorchScript, the PyTorch peer) and
OUT/NAME.in.INPUT.npy. --small builds the CI-sized
models (mlp, bert-tiny, vit-tiny, mobilenet-v2 at 96x96); the default also
builds bert-base (12 layers, hidden 768, 12 heads, seq 128), resnet-50,
mobilenet-v2 and vit-small at 224x224.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OPSET = 14


class BertLayer(nn.Module):
    """Post-norm transformer encoder layer as in BERT, GELU via erf."""

    def __init__(self, hidden, heads, ff, pre_norm=False):
        super().__init__()
        self.heads, self.pre_norm = heads, pre_norm
        self.q, self.k, self.v, self.o = (nn.Linear(hidden, hidden) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(hidden, eps=1e-12), nn.LayerNorm(hidden, eps=1e-12)
        self.f1, self.f2 = nn.Linear(hidden, ff), nn.Linear(ff, hidden)

    def attention(self, x, mask):
        b, t, h = x.shape
        d = h // self.heads
        q = self.q(x).view(b, t, self.heads, d).transpose(1, 2)
        k = self.k(x).view(b, t, self.heads, d).transpose(1, 2)
        v = self.v(x).view(b, t, self.heads, d).transpose(1, 2)
        att = q @ k.transpose(-1, -2) / math.sqrt(d)
        if mask is not None:
            att = att + mask
        ctx = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, h)
        return self.o(ctx)

    def forward(self, x, mask=None):
        if self.pre_norm:
            x = x + self.attention(self.ln1(x), mask)
            return x + self.f2(F.gelu(self.f1(self.ln2(x))))
        x = self.ln1(x + self.attention(x, mask))
        return self.ln2(x + self.f2(F.gelu(self.f1(x))))


class Bert(nn.Module):
    def __init__(self, layers, hidden, heads, ff, vocab=30522, max_pos=512):
        super().__init__()
        self.word, self.pos, self.segment = nn.Embedding(vocab, hidden), nn.Embedding(max_pos, hidden), nn.Embedding(2, hidden)
        self.ln = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList(BertLayer(hidden, heads, ff) for _ in range(layers))

    def forward(self, input_ids, attention_mask):
        t = input_ids.shape[1]
        pos = torch.arange(t, dtype=torch.long).unsqueeze(0)
        x = self.ln(self.word(input_ids) + self.pos(pos) + self.segment(torch.zeros_like(input_ids)))
        mask = (1.0 - attention_mask[:, None, None, :].float()) * -10000.0
        for layer in self.layers:
            x = layer(x, mask)
        return x


class Vit(nn.Module):
    def __init__(self, image, patch, layers, hidden, heads, ff, classes=1000):
        super().__init__()
        self.embed = nn.Conv2d(3, hidden, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, hidden) * 0.02)
        self.layers = nn.ModuleList(BertLayer(hidden, heads, ff, pre_norm=True) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(hidden), nn.Linear(hidden, classes)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        for layer in self.layers:
            x = layer(x)
        return self.head(self.ln(x[:, 0]))


def prune_structured(bert, head_frac=0.5, ffn_frac=0.5):
    """Prunes whole attention heads and FFN channels of every layer, those of
    smallest L2 norm, biases kept: a head's q, k and v output features and
    o's input features; an FFN channel's f1 output feature and f2 input
    feature. The model stays the same size: pruned weights are zeros."""
    with torch.no_grad():
        for layer in bert.layers:
            d = layer.q.out_features // layer.heads
            norms = torch.stack([sum(m.weight[h * d:(h + 1) * d].norm() for m in (layer.q, layer.k, layer.v))
                                 for h in range(layer.heads)])
            for h in norms.argsort()[:int(layer.heads * head_frac)].tolist():
                rows = slice(h * d, (h + 1) * d)
                for m in (layer.q, layer.k, layer.v):
                    m.weight[rows] = 0
                layer.o.weight[:, rows] = 0
            drop = layer.f1.weight.norm(dim=1).argsort()[:int(layer.f1.out_features * ffn_frac)]
            layer.f1.weight[drop] = 0
            layer.f2.weight[:, drop] = 0
    return bert


def prune_bottlenecks(resnet, frac=0.5):
    """Prunes whole output channels of the first two convolutions of every
    bottleneck, those of smallest L1 norm; BatchNorm kept (with its
    initial statistics a pruned channel stays exactly zero after it)."""
    with torch.no_grad():
        for layer in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4):
            for block in layer:
                for conv in (block.conv1, block.conv2):
                    norms = conv.weight.abs().sum(dim=(1, 2, 3))
                    conv.weight[norms.argsort()[:int(conv.out_channels * frac)]] = 0
    return resnet


def mlp():
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)), \
        {"x": torch.randn(1, 784)}


def bert_inputs(seq, vocab=30522):
    ids = torch.randint(0, vocab, (1, seq), dtype=torch.long)
    mask = torch.ones(1, seq, dtype=torch.long)
    mask[0, seq * 3 // 4:] = 0  # padded tail
    return {"input_ids": ids, "attention_mask": mask}


def torchvision_model(name, size):
    import torchvision
    m = getattr(torchvision.models, name)(weights=None)
    return m, {"image": torch.randn(1, 3, size, size)}


MODELS = {
    # name: (builder, small)
    "mlp": (mlp, True),
    "bert-tiny": (lambda: (Bert(2, 128, 2, 512), bert_inputs(128)), True),
    "bert-tiny-struct50": (lambda: (prune_structured(Bert(2, 128, 2, 512)), bert_inputs(128)), True),
    "vit-tiny": (lambda: (Vit(96, 16, 2, 192, 3, 768), {"image": torch.randn(1, 3, 96, 96)}), True),
    "mobilenet-v2-96": (lambda: torchvision_model("mobilenet_v2", 96), True),
    "bert-small": (lambda: (Bert(3, 384, 6, 1536), bert_inputs(64)), False),
    "bert-base": (lambda: (Bert(12, 768, 12, 3072), bert_inputs(128)), False),
    "bert-base-struct50": (lambda: (prune_structured(Bert(12, 768, 12, 3072)), bert_inputs(128)), False),
    "vit-small": (lambda: (Vit(224, 16, 12, 384, 6, 1536), {"image": torch.randn(1, 3, 224, 224)}), False),
    "resnet-50": (lambda: torchvision_model("resnet50", 224), False),
    "resnet-18-160": (lambda: torchvision_model("resnet18", 160), False),
    "resnet-50-struct50": (lambda: (lambda m, x: (prune_bottlenecks(m), x))(*torchvision_model("resnet50", 224)), False),
    "mobilenet-v2": (lambda: torchvision_model("mobilenet_v2", 224), False),
}


def dynamic_axes(inputs):
    """Batch (and a BERT's sequence) axes left symbolic, as the usual export does."""
    axes = {}
    for k, v in inputs.items():
        axes[k] = {0: "batch", 1: "sequence"} if v.dim() == 2 and not v.is_floating_point() else {0: "batch"}
    axes["output"] = {0: "batch", 1: "sequence"} if any(not v.is_floating_point() for v in inputs.values()) else {0: "batch"}
    return axes


def export(name, out, dynamic=False):
    torch.manual_seed(0)
    model, inputs = MODELS[name][0]()
    model.eval()
    path = os.path.join(out, name + ("-dyn" if dynamic else "") + ".onnx")
    t0 = time.time()
    with torch.no_grad():
        torch.onnx.export(model, tuple(inputs.values()), path, opset_version=OPSET,
                          input_names=list(inputs), output_names=["output"], do_constant_folding=True,
                          dynamic_axes=dynamic_axes(inputs) if dynamic else None)
        if dynamic:
            print(f"{name}: dynamic axes -> {path}", flush=True)
            return
        # TorchScript beside the ONNX file: the PyTorch peer of `sparta bench model`.
        torch.jit.trace(model, tuple(inputs.values()), check_trace=False).save(os.path.join(out, name + ".pt"))
    for k, v in inputs.items():
        np.save(os.path.join(out, f"{name}.in.{k}.npy"), v.numpy())
    params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {params / 1e6:.1f}M parameters -> {path} ({time.time() - t0:.1f} s)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models")
    ap.add_argument("--small", action="store_true", help="only the CI-sized models")
    ap.add_argument("--only", nargs="*", help="these models only")
    ap.add_argument("--dynamic", action="store_true",
                    help="export with symbolic batch (and sequence) axes, as NAME-dyn.onnx")
    a = ap.parse_args()
    names = a.only or [n for n, (_, small) in MODELS.items() if small or not a.small]
    for n in names:
        if n not in MODELS:
            sys.exit(f"model_zoo: unknown model '{n}' (known: {', '.join(MODELS)})")
    os.makedirs(a.out, exist_ok=True)
    for n in names:
        export(n, a.out, a.dynamic)


if __name__ == "__main__":
    main()
