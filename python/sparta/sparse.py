"""Sparse 3-D tensors (point-cloud voxels) and their convolutions.

    x = sparta.SparseTensor(coords, feats)   # coords int32 [N, 4] (batch, x, y, z), feats float32 [N, Cin]
    y = sparta.sparse_conv3d(x, weight, stride=1, padding=0, dilation=1, subm=False, bias=None)
    y.coords, y.feats                         # numpy arrays

`weight` is float32 [K, K, K, Cin, Cout] (or [kx, ky, kz, Cin, Cout]), its
first three axes along x, y, z. With subm=False the result equals
torch.nn.functional.conv3d on the dense grid (weight permuted to
[Cout, Cin, kx, ky, kz]) with the same stride, padding and dilation, at
every output site whose receptive field holds an active input; those sites,
in output-grid coordinates and sorted by (batch, x, y, z), are y's rows. The
grid is unbounded above unless the tensor was given a spatial_shape (then
outputs stop at the dense output's extent). With subm=True (stride 1, odd
kernel) y's sites are x's, in x's row order, and its features equal the
dense convolution with padding dilation * (K - 1) / 2 at those sites.

sparse_inverse_conv3d(y, weight) inverts the strided layer y came from: y's
features go back to that layer's input sites (its rows, in its order)
through the same map reversed, as conv_transpose3d with that layer's
stride, padding and dilation would give there (weight [kx, ky, kz, Cin,
Cout], the strided layer's kernel extents, Cin = y's channels).

Kernel maps are built once per set of sites and geometry and reused by every
later layer on the same sites (tensors a submanifold layer returns share
their input's sites).
"""
import numpy as np

from . import _sparta

__all__ = ["SparseTensor", "sparse_conv3d", "sparse_inverse_conv3d"]


def _triple(v, what):
    if isinstance(v, (int, np.integer)):
        return [int(v)] * 3
    v = [int(e) for e in v]
    if len(v) != 3:
        raise _sparta.Error(f"{what} must be an int or 3 ints (x, y, z), got {len(v)} values")
    return v


class SparseTensor:
    """Voxel sites and their features.

    coords: int32 [N, 4] (batch, x, y, z); feats: float32 [N, C].
    spatial_shape: the grid's extent (x, y, z), or None for an unbounded grid.
    duplicates: 'error' (a one-line error naming the first repeated row),
    'sum' or 'mean' (rows with the same coordinates merged, in order of
    first appearance).
    """

    def __init__(self, coords, feats, spatial_shape=None, duplicates="error", threads=1):
        shape = None if spatial_shape is None else [int(e) for e in spatial_shape]
        self._t = _sparta.voxel_tensor(np.asarray(coords), np.asarray(feats), shape, duplicates, int(threads))

    @classmethod
    def _of(cls, t):
        s = cls.__new__(cls)
        s._t = t
        return s

    @property
    def coords(self):
        """int32 [N, 4] (batch, x, y, z)."""
        return self._t.coords

    @property
    def feats(self):
        """float32 [N, C]."""
        return self._t.feats

    @property
    def stride(self):
        """The voxel size relative to the first grid's, per axis."""
        return tuple(self._t.stride)

    @property
    def spatial_shape(self):
        s = self._t.spatial_shape
        return None if s is None else tuple(s)

    def replace_feats(self, feats):
        """A tensor on the same sites (sharing their maps) with other features, float32 [N, C']."""
        return SparseTensor._of(_sparta.with_feats(self._t, np.asarray(feats)))

    def __len__(self):
        return int(self._t.coords.shape[0])

    def __repr__(self):
        return f"SparseTensor({len(self)} sites, {self.feats.shape[1]} channels, stride {self.stride})"


def sparse_conv3d(x, weight, stride=1, padding=0, dilation=1, subm=False, bias=None, relu=False, threads=1):
    """A sparse 3-D convolution of x (see the module's docstring for its exact meaning)."""
    if not isinstance(x, SparseTensor):
        raise _sparta.Error("sparse_conv3d takes a sparta.SparseTensor")
    w = np.asarray(weight)
    b = None if bias is None else np.asarray(bias)
    return SparseTensor._of(_sparta.sparse_conv3d(x._t, w, b, _triple(stride, "stride"), _triple(padding, "padding"),
                                                  _triple(dilation, "dilation"), bool(subm), bool(relu), int(threads)))


def sparse_inverse_conv3d(y, weight, bias=None, relu=False, threads=1):
    """The transposed convolution back to the sites of the strided layer y came from."""
    if not isinstance(y, SparseTensor):
        raise _sparta.Error("sparse_inverse_conv3d takes a sparta.SparseTensor")
    b = None if bias is None else np.asarray(bias)
    return SparseTensor._of(_sparta.sparse_inverse_conv3d(y._t, np.asarray(weight), b, bool(relu), int(threads)))
