"""sparta.SparseTensor and sparta.sparse_conv3d against PyTorch's dense
conv3d (Debian's torch 1.13) on small grids: the documented semantics,
exactly (output sites, their order, their features), and bad input.

Run by ctest with PYTHONPATH=<build>/python (tests/CMakeLists.txt)."""
import unittest

import numpy as np
import torch

import sparta


def random_cloud(rng, batches, shape, p):
    grid = rng.random((batches,) + shape) < p
    coords = np.argwhere(grid).astype(np.int32)
    rng.shuffle(coords)
    return coords


def dense(coords, feats, batches, shape):
    d = np.zeros((batches, feats.shape[1]) + shape, np.float32)
    d[coords[:, 0], :, coords[:, 1], coords[:, 2], coords[:, 3]] = feats
    return torch.from_numpy(d)


class SparseConv3dTest(unittest.TestCase):
    def check(self, k, stride, padding, dilation, subm, cin, cout, rng):
        shape = (7, 6, 5)
        coords = random_cloud(rng, 2, shape, 0.2)
        feats = rng.standard_normal((len(coords), cin)).astype(np.float32)
        w = rng.standard_normal(tuple(k) + (cin, cout)).astype(np.float32)
        b = rng.standard_normal(cout).astype(np.float32)
        x = sparta.SparseTensor(coords, feats, spatial_shape=shape)
        y = sparta.sparse_conv3d(x, w, stride=stride, padding=padding, dilation=dilation, subm=subm, bias=b)
        wt = torch.from_numpy(np.ascontiguousarray(w.transpose(4, 3, 0, 1, 2)))
        pad = [dilation * (e - 1) // 2 for e in k] if subm else padding
        ref = torch.nn.functional.conv3d(dense(coords, feats, 2, shape), wt, torch.from_numpy(b), stride=stride,
                                         padding=pad, dilation=dilation).numpy()
        ones = torch.nn.functional.conv3d(dense(coords, np.ones((len(coords), 1), np.float32), 2, shape),
                                          torch.ones((1, 1) + tuple(k)), stride=stride, padding=pad,
                                          dilation=dilation).numpy()[:, 0]
        if subm:
            np.testing.assert_array_equal(y.coords, coords)
        else:
            want = np.argwhere(ones > 0).astype(np.int32)  # row-major: sorted by (batch, x, y, z)
            np.testing.assert_array_equal(y.coords, want)
        c = y.coords
        np.testing.assert_allclose(y.feats, ref[c[:, 0], :, c[:, 1], c[:, 2], c[:, 3]], rtol=1e-4, atol=1e-4)

    def test_matches_dense_conv3d(self):
        rng = np.random.default_rng(7)
        for k, subm, stride, padding, dilation in [((3, 3, 3), True, 1, 0, 1), ((5, 5, 5), True, 1, 0, 2),
                                                   ((1, 3, 5), True, 1, 0, 1), ((2, 2, 2), False, 2, 0, 1),
                                                   ((3, 3, 3), False, 2, 1, 1), ((3, 3, 3), False, 1, 2, 2),
                                                   ((4, 4, 4), False, 3, 1, 1)]:
            with self.subTest(k=k, subm=subm, stride=stride, padding=padding, dilation=dilation):
                self.check(k, stride, padding, dilation, subm, 5, 17, rng)

    def test_inverse_matches_dense_conv_transpose3d(self):
        rng = np.random.default_rng(3)
        shape = (9, 8, 7)
        for k, stride, padding, dilation in [((2, 2, 2), 2, 0, 1), ((3, 3, 3), 2, 1, 1), ((3, 2, 3), 3, 1, 1),
                                             ((3, 3, 3), 2, 1, 2)]:
            with self.subTest(k=k, stride=stride, padding=padding, dilation=dilation):
                coords = random_cloud(rng, 2, shape, 0.2)
                x = sparta.SparseTensor(coords, rng.standard_normal((len(coords), 3)).astype(np.float32),
                                        spatial_shape=shape)
                w = rng.standard_normal(k + (3, 6)).astype(np.float32)
                y = sparta.sparse_conv3d(x, w, stride=stride, padding=padding, dilation=dilation)
                w2 = rng.standard_normal(k + (6, 5)).astype(np.float32)
                b2 = rng.standard_normal(5).astype(np.float32)
                z = sparta.sparse_inverse_conv3d(y, w2, bias=b2)
                np.testing.assert_array_equal(z.coords, coords)  # x's sites, x's order
                out_shape = tuple((d + 2 * padding - dilation * (e - 1) - 1) // stride + 1 for d, e in zip(shape, k))
                dy = dense(y.coords, y.feats, 2, out_shape)
                wt = torch.from_numpy(np.ascontiguousarray(w2.transpose(3, 4, 0, 1, 2)))  # [Cin, Cout, kx, ky, kz]
                # Uncropped (padding 0): site i sits at i + padding; past the
                # result's extent no pair reaches it (bias only).
                full = torch.nn.functional.conv_transpose3d(dy, wt, stride=stride, dilation=dilation).numpy()
                full = np.pad(full, [(0, 0), (0, 0)] + [(0, max(0, d + padding - f)) for d, f in zip(shape, full.shape[2:])])
                c = coords
                want = full[c[:, 0], :, c[:, 1] + padding, c[:, 2] + padding, c[:, 3] + padding] + b2
                np.testing.assert_allclose(z.feats, want, rtol=1e-4, atol=1e-4)
        with self.assertRaisesRegex(sparta.Error, "strided"):
            sparta.sparse_inverse_conv3d(x, np.zeros((3, 3, 3, 3, 2), np.float32))
        with self.assertRaisesRegex(sparta.Error, "kernel extents"):
            sparta.sparse_inverse_conv3d(y, np.zeros((2, 2, 2, 6, 2), np.float32))

    def test_layers_chain_and_share_sites(self):
        rng = np.random.default_rng(1)
        coords = random_cloud(rng, 1, (16, 16, 16), 0.1)
        x = sparta.SparseTensor(coords, rng.standard_normal((len(coords), 4)).astype(np.float32))
        w = rng.standard_normal((3, 3, 3, 4, 8)).astype(np.float32)
        h = sparta.sparse_conv3d(x, w, subm=True, relu=True)
        self.assertTrue((h.feats >= 0).all())
        d = sparta.sparse_conv3d(h, rng.standard_normal((2, 2, 2, 8, 8)).astype(np.float32), stride=2)
        self.assertEqual(d.stride, (2, 2, 2))
        self.assertLessEqual(len(d), len(x))
        self.assertEqual(d.coords.dtype, np.int32)
        self.assertEqual(d.feats.shape, (len(d), 8))

    def test_bad_input(self):
        c = np.array([[0, 1, 2, 3], [0, 1, 2, 3]], np.int32)
        f = np.ones((2, 3), np.float32)
        with self.assertRaisesRegex(sparta.Error, r"duplicate coordinates: row 1 \(0, 1, 2, 3\) repeats row 0"):
            sparta.SparseTensor(c, f)
        self.assertEqual(len(sparta.SparseTensor(c, f, duplicates="mean")), 1)
        with self.assertRaisesRegex(sparta.Error, "int32"):
            sparta.SparseTensor(c.astype(np.int64), f)
        with self.assertRaisesRegex(sparta.Error, "float32"):
            sparta.SparseTensor(c[:1], np.ones((1, 3), np.float64))
        with self.assertRaisesRegex(sparta.Error, "duplicates must be"):
            sparta.SparseTensor(c, f, duplicates="first")
        x = sparta.SparseTensor(c[:1], f[:1])
        with self.assertRaisesRegex(sparta.Error, "input channels"):
            sparta.sparse_conv3d(x, np.zeros((3, 3, 3, 4, 2), np.float32))
        with self.assertRaisesRegex(sparta.Error, "stride must be"):
            sparta.sparse_conv3d(x, np.zeros((3, 3, 3, 3, 2), np.float32), stride=(1, 2))
        with self.assertRaisesRegex(sparta.Error, "threads"):
            sparta.SparseTensor(c[:1], f[:1], threads=0)
        net = sparta.nn.SecondEncoder(4)
        with self.assertRaisesRegex(sparta.Error, "is not an array|float32"):
            net.load_state_dict({"conv_input.0.weight": [[1.0], [1.0, 2.0]]})
        empty = sparta.SparseTensor(np.zeros((0, 4), np.int32), np.zeros((0, 3), np.float32))
        y = sparta.sparse_conv3d(empty, np.zeros((3, 3, 3, 3, 2), np.float32), stride=2)
        self.assertEqual(y.feats.shape, (0, 2))


if __name__ == "__main__":
    unittest.main()
