"""sparta.nn's MinkUNet and SECOND encoder against the same networks in
spconv (sparta.spconv_nets), from one spconv state_dict with non-trivial
BatchNorm statistics, on a simulated LiDAR scan: same output sites, features
within 1e-4 of the largest. Also the single layers' spconv conventions
(1x1x1 weights, inverse layers) and a state_dict missing a parameter.

Needs spconv (scripts/setup.sh installs it into .venv); run by ctest with
.venv/bin/python and PYTHONPATH=<build>/python."""
import sys
import unittest

import numpy as np
import torch

import sparta
from sparta import spconv_nets

try:
    import spconv.pytorch as sp
except ImportError as e:  # a real failure: the peer is part of the setup
    sys.exit(f"spconv is not installed ({e}): run scripts/setup.sh")


def in_order(coords, feats):
    o = np.lexsort(coords[:, ::-1].T)
    return coords[o], feats[o]


class NetsMatchSpconv(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.coords, cls.shape = sparta.datasets.scene("lidar", 20000, seed=4)
        cls.feats = np.random.default_rng(1).standard_normal((len(cls.coords), 4)).astype(np.float32)

    def check(self, net, ref, threads):
        ref.load_state_dict({k: torch.from_numpy(v) for k, v in net.random_state(seed=5).items()}, strict=False)
        net.load_state_dict(ref.state_dict())
        y = net(sparta.SparseTensor(self.coords, self.feats, spatial_shape=self.shape), threads=threads)
        with torch.no_grad():
            r = ref(sp.SparseConvTensor(torch.from_numpy(self.feats), torch.from_numpy(self.coords), list(self.shape), 1))
        yc, yf = in_order(y.coords, y.feats)
        rc, rf = in_order(r.indices.numpy().astype(np.int32), r.features.numpy())
        np.testing.assert_array_equal(yc, rc)
        self.assertLess(np.abs(yf - rf).max() / np.abs(rf).max(), 1e-4)

    def test_minkunet(self):
        for threads in (1, 2):
            self.check(sparta.nn.MinkUNet(4, 7, channels=(16, 16, 24, 32, 48, 48, 32, 24, 24)),
                       spconv_nets.minkunet(4, 7, channels=(16, 16, 24, 32, 48, 48, 32, 24, 24)), threads)

    def test_second(self):
        self.check(sparta.nn.SecondEncoder(4), spconv_nets.second_encoder(4), 1)

    def test_missing_parameter_is_named(self):
        net = sparta.nn.SecondEncoder(4)
        state = net.random_state()
        del state["conv3.1.1.running_var"]
        with self.assertRaisesRegex(sparta.Error, "conv3.1.1.running_var"):
            net.load_state_dict(state)

    def test_single_layers_load_spconv_weights(self):
        rng = np.random.default_rng(2)
        x = sparta.SparseTensor(self.coords, self.feats, spatial_shape=self.shape)
        t = sp.SparseConvTensor(torch.from_numpy(self.feats), torch.from_numpy(self.coords), list(self.shape), 1)
        for k in (1, 3):
            ref = sp.SubMConv3d(4, 6, k, bias=True, indice_key=f"k{k}")
            ours = sparta.nn.SubMConv3d(4, 6, k, bias=True).load_spconv(ref.weight, ref.bias)
            with torch.no_grad():
                np.testing.assert_allclose(ours(x).feats, ref(t).features.numpy(), rtol=1e-4, atol=1e-4)
        down = sp.SparseConv3d(4, 5, 2, stride=2, bias=False, indice_key="d")
        inv = sp.SparseInverseConv3d(5, 3, 2, bias=False, indice_key="d")
        with torch.no_grad():
            for p in (down.weight, inv.weight):
                p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
            r = inv(down(t))
        z = sparta.nn.SparseInverseConv3d(5, 3, 2).load_spconv(inv.weight)(
            sparta.nn.SparseConv3d(4, 5, 2, stride=2).load_spconv(down.weight)(x))
        np.testing.assert_array_equal(z.coords, r.indices.numpy())
        np.testing.assert_allclose(z.feats, r.features.numpy(), rtol=1e-4, atol=1e-4)


if __name__ == "__main__":
    unittest.main()
