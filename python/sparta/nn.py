"""Sparse 3-D layers and networks over sparta.SparseTensor.

    net = sparta.nn.MinkUNet(in_channels=4, num_classes=19)
    net.load_state_dict(spconv_model.state_dict())   # the same network written with spconv
    y = net(sparta.SparseTensor(coords, feats))       # per-voxel class scores on x's sites

The networks take the state_dict of the same network written with spconv
(sparta.spconv_nets builds those: its parameter names and layouts), fold every
BatchNorm into its convolution and ReLU into the convolution's epilogue, and
run in sparta's C++ core. The layers hold weights in sparta's layout
[kx, ky, kz, Cin, Cout] (from_spconv converts a spconv layer's).
"""
import numpy as np

from . import _sparta
from .sparse import SparseTensor, sparse_conv3d, sparse_inverse_conv3d

__all__ = ["SubMConv3d", "SparseConv3d", "SparseInverseConv3d", "MinkUNet", "SecondEncoder"]

MINKUNET_CHANNELS = (32, 32, 64, 128, 256, 256, 128, 96, 96)


def _numpy(v):
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(v, dtype=np.float32))


def _triple(v):
    return (int(v),) * 3 if np.isscalar(v) else tuple(int(e) for e in v)


class _Conv:
    def __init__(self, in_channels, out_channels, kernel_size, bias, rng):
        k = _triple(kernel_size)
        scale = np.sqrt(2.0 / (in_channels * k[0] * k[1] * k[2]))
        rng = rng or np.random.default_rng(0)
        self.weight = (rng.standard_normal(k + (in_channels, out_channels)) * scale).astype(np.float32)
        self.bias = np.zeros(out_channels, np.float32) if bias else None

    _stride_one = True

    def load_spconv(self, weight, bias=None):
        """Takes a spconv layer's weight [Cout, kx, ky, kz, Cin] (and bias).

        spconv runs a 1x1x1 layer of stride 1 as a matrix product that reads
        the weight's memory as [Cin, Cout] whatever its shape says; such a
        weight is read that way here too."""
        w = _numpy(weight)
        if w.ndim != 5 or w.shape[0] != self.weight.shape[4] or w.shape[4] != self.weight.shape[3]:
            raise _sparta.Error(f"spconv weight {w.shape} does not fit a layer of weight {self.weight.shape}")
        if w.shape[1:4] == (1, 1, 1) and self._stride_one:
            self.weight = np.ascontiguousarray(w.reshape(w.shape[4], w.shape[0]).reshape(1, 1, 1, w.shape[4], w.shape[0]))
        else:
            self.weight = np.ascontiguousarray(w.transpose(1, 2, 3, 4, 0))
        if bias is not None:
            self.bias = _numpy(bias)
        return self


class SubMConv3d(_Conv):
    """Submanifold convolution (stride 1, odd kernel): output sites = input sites."""

    def __init__(self, in_channels, out_channels, kernel_size=3, dilation=1, bias=False, relu=False, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, bias, rng)
        self.dilation, self.relu = dilation, relu

    def __call__(self, x, threads=1):
        return sparse_conv3d(x, self.weight, dilation=self.dilation, subm=True, bias=self.bias, relu=self.relu,
                             threads=threads)


class SparseConv3d(_Conv):
    """Generalized (strided) sparse convolution."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=0, dilation=1, bias=False,
                 relu=False, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, bias, rng)
        self.stride, self.padding, self.dilation, self.relu = stride, padding, dilation, relu
        self._stride_one = _triple(stride) == (1, 1, 1)

    def __call__(self, x, threads=1):
        return sparse_conv3d(x, self.weight, stride=self.stride, padding=self.padding, dilation=self.dilation,
                             bias=self.bias, relu=self.relu, threads=threads)


class SparseInverseConv3d(_Conv):
    """The transposed convolution back to the sites of the strided layer its input came from."""

    def __init__(self, in_channels, out_channels, kernel_size=2, bias=False, relu=False, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, bias, rng)
        self.relu = relu
        self._stride_one = False  # spconv's 1x1 product is not used for inverse layers

    def __call__(self, y, threads=1):
        return sparse_inverse_conv3d(y, self.weight, bias=self.bias, relu=self.relu, threads=threads)


class _Net:
    kind = None

    def __init__(self, in_channels, num_classes, channels, threads):
        self.in_channels, self.num_classes, self.channels, self.threads = in_channels, num_classes, channels, threads
        self._net = None

    def load_state_dict(self, state):
        """A spconv state_dict (torch tensors or numpy arrays) of the same network; BatchNorm statistics folded."""
        arrays = {}
        for k, v in state.items():
            if k.endswith("num_batches_tracked"):
                continue
            try:
                arrays[k] = _numpy(v)
            except (TypeError, ValueError) as e:
                raise _sparta.Error(f"state_dict entry '{k}' is not an array of numbers: {e}") from None
        self._net = _sparta.sparse_net(self.kind, arrays, self.in_channels, self.num_classes, list(self.channels))
        return self

    def random_state(self, seed=0):
        """Seeded weights and BatchNorm statistics under spconv's names (numpy arrays)."""
        return _sparta.random_net_state(self.kind, self.in_channels, self.num_classes, list(self.channels), seed)

    def __call__(self, x, threads=None):
        if self._net is None:
            raise _sparta.Error(f"{type(self).__name__}: load_state_dict first")
        if not isinstance(x, SparseTensor):
            raise _sparta.Error(f"{type(self).__name__} takes a sparta.SparseTensor")
        return SparseTensor._of(self._net.forward(x._t, int(threads or self.threads)))


class MinkUNet(_Net):
    """MinkUNet-style sparse U-Net: stem, 4 strided down stages of residual
    submanifold blocks, 4 transposed up stages with skip concatenation, a
    1x1x1 classifier. Output: per-voxel scores on the input's sites."""
    kind = "minkunet"

    def __init__(self, in_channels=4, num_classes=19, channels=MINKUNET_CHANNELS, threads=1):
        super().__init__(in_channels, num_classes, tuple(channels), threads)


class SecondEncoder(_Net):
    """SECOND-style sparse encoder: submanifold blocks between three
    stride-2 convolutions (16-32-64-64 channels), then a stride-2 compression
    along z to 128 channels."""
    kind = "second"

    def __init__(self, in_channels=4, threads=1):
        super().__init__(in_channels, 1, (), threads)
