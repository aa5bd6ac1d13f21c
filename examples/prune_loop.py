#!/usr/bin/env python3
"""The pruning loop for one pattern, in Python: a model trained on
Fashion-MNIST, pruned to 90% in 32x1 blocks while fine-tuning, exported,
compiled by sparta, then its test accuracy and batch-1 latency.

  .venv/bin/python examples/prune_loop.py [TRAIN_IMAGES]   (default: all 60000)
"""
import sys

import torch

import sparta
import sparta.torch as st

torch.manual_seed(0)
x, y = st.fashion_mnist_tensors("train", limit=int(sys.argv[1]) if len(sys.argv) > 1 else None)
xt, yt = st.fashion_mnist_tensors("test")
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 512), torch.nn.ReLU(),
                            torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
st.fine_tune(model, st.batches(x, y), epochs=2)  # the user's trained model

# The loop: prune while fine-tuning, export, compile, measure.
pruner = st.GradualPruner(model, "block", 0.9, block="32x1", end_step=len(x) // 128, frequency=20, skip=["5"])
st.fine_tune(model, st.batches(x, y), epochs=2, pruner=pruner)
st.export(model, (xt[:1],), "mlp-block90.onnx", input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}})
fast = sparta.compile("mlp-block90.onnx", shapes={"x": [1, 1, 28, 28]})
acc = st.accuracy(lambda b: fast.run({"x": b.numpy()})["y"], xt, yt)
print(f"accuracy {100 * acc:.2f}%, {fast.benchmark({'x': xt[:1].numpy()}):.3f} ms per image, sparsity {st.sparsity_of(model, ['5']):.2f}")
