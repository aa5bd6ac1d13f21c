"""Datasets without downloads: Fashion-MNIST as Debian's
dataset-fashion-mnist package installs it (/usr/share/datasets/fashion-mnist),
and point-cloud scenes made here from a seed.

    images, labels = sparta.datasets.fashion_mnist("train")   # uint8 [60000, 28, 28], uint8 [60000]
    coords, shape = sparta.datasets.scene("lidar", 100000)      # int32 [N, 4] voxels, the grid's extent
"""
import errno
import gzip
import os
import struct

import numpy as np

import sparta

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")


def _idx(path, magic, what):
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, f"{what} not found (Debian: apt-get install dataset-fashion-mnist)", path)
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise sparta.Error(f"{path}: not a readable gzip file ({e})") from None
    ndim = magic & 0xFF
    if len(data) < 4 + 4 * ndim or struct.unpack(">I", data[:4])[0] != magic:
        raise sparta.Error(f"{path}: not an IDX file of {what} (bad header)")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    want = int(np.prod(dims))
    if len(body) != want:
        raise sparta.Error(f"{path}: truncated or corrupt: {len(body)} bytes of data, the header says {want}")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def fashion_mnist(split="train", root=None):
    """(images uint8 [N, 28, 28], labels uint8 [N]) of the 'train' (60000) or 'test' (10000) split."""
    if split not in ("train", "test"):
        raise ValueError("split must be 'train' or 'test'")
    root = root or FASHION_MNIST_DIR
    prefix = "train" if split == "train" else "t10k"
    images = _idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"), 0x00000803, "Fashion-MNIST images")
    labels = _idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"), 0x00000801, "Fashion-MNIST labels")
    if len(images) != len(labels):
        raise sparta.Error(f"{root}: {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise sparta.Error(f"{root}: a label above 9")
    return images, labels


def scene(name="lidar", voxels=100000, seed=0):
    """A voxelized scene of about `voxels` voxels: "lidar" (one revolution of a
    64-beam rotating LiDAR ray-cast into a procedural street), "room" (a
    procedural indoor room sampled on its surfaces) or "shells" (sphere shells
    in a 256^3 grid, exactly `voxels`). Returns (coords int32 [N, 4] as
    (batch 0, x, y, z), the grid's extent (x, y, z))."""
    return sparta._sparta.make_scene(str(name), int(voxels), int(seed))
