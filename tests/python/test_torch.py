"""sparta.torch: masks on torch.nn modules that training respects, the cubic
schedule, RigL, sensitivity, channel ties from the exported graph, and
export to ONNX + TeSA spec that sparta then runs to the same outputs."""
import os
import tempfile
import unittest

import numpy as np
import torch

import sparta
import sparta.torch as st


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = torch.nn.Linear(32, 64), torch.nn.Linear(64, 64), torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class ResCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.b = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.c = torch.nn.Conv2d(16, 8, 1)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        a = torch.relu(self.a(x))
        s = torch.relu(a + self.b(a))  # a and b are tied channel by channel
        return self.fc(torch.relu(self.c(s)).mean((2, 3)))


def zero_rows(w):
    w = w.detach().reshape(w.shape[0], -1)
    return set(torch.nonzero((w == 0).all(1)).flatten().tolist())


class TorchHelpers(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)

    def test_masks_survive_training(self):
        model = Mlp()
        masks = st.prune(model, "block", 0.75, block="4x1")
        self.assertNotIn("fc3", masks)  # 10 outputs: no 4x1 blocks
        self.assertAlmostEqual(st.sparsity_of(model, skip=["fc3"]), 0.75, places=6)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for _ in range(3):
            loss = model(torch.randn(8, 32)).square().mean()
            loss.backward()
            opt.step()
            opt.zero_grad()
        model(torch.randn(1, 32))  # the hook zeroes again before the forward
        for name, m in [("fc1", model.fc1), ("fc2", model.fc2)]:
            self.assertTrue((m.weight.detach()[~masks[name]] == 0).all())
        st.remove_masks(model)
        self.assertFalse(hasattr(model.fc1, "sparta_mask"))
        self.assertAlmostEqual(st.sparsity_of(model, skip=["fc3"]), 0.75, places=2)

    def test_cubic_schedule_and_gradual_pruner(self):
        self.assertEqual(st.cubic_sparsity(0, 0.9, 0.0, 0, 100), 0.0)
        self.assertAlmostEqual(st.cubic_sparsity(100, 0.9, 0.0, 0, 100), 0.9)
        self.assertAlmostEqual(st.cubic_sparsity(50, 0.9, 0.0, 0, 100), 0.9 - 0.9 * 0.125)
        model = Mlp()
        p = st.GradualPruner(model, "unstructured", 0.9, start_step=0, end_step=10, frequency=2)
        seen = []
        for t in range(13):
            p.step(t)
            seen.append(st.sparsity_of(model))
        self.assertEqual(seen, sorted(seen))
        self.assertAlmostEqual(seen[-1], 0.9, places=3)

    def test_rigl_keeps_sparsity_and_moves_weights(self):
        model = Mlp()
        rigl = st.RigL(model, 0.8, drop_fraction=0.3, end_step=100, frequency=10)
        before = {k: v.clone() for k, v in rigl.masks.items()}
        model(torch.randn(16, 32)).square().mean().backward()
        moved = rigl.step(10)
        self.assertGreater(moved, 0)
        for name, mask in rigl.masks.items():
            self.assertEqual(int(mask.sum()), int(before[name].sum()))
        self.assertTrue(any((rigl.masks[k] != before[k]).any() for k in before))
        self.assertGreaterEqual(st.sparsity_of(model), 0.8 - 1e-3)  # regrown weights start at zero
        model.zero_grad(set_to_none=True)
        with self.assertRaises(sparta.Error):
            rigl.step(20)

    def test_sensitivity_restores_the_model(self):
        model = Mlp()
        w = model.fc2.weight.detach().clone()
        x = torch.randn(4, 32)
        ref = model(x).detach()
        res = st.sensitivity(model, lambda m: float((m(x) - ref).abs().max()), sparsities=(0.5, 0.9))
        self.assertEqual(set(res), {"fc1", "fc2", "fc3"})
        self.assertLess(res["fc2"][0][1], res["fc2"][1][1])  # more pruning, more change
        self.assertTrue(torch.equal(model.fc2.weight, w))

    def test_channel_ties_and_export(self):
        model = ResCnn()
        x = torch.randn(1, 3, 16, 16)
        masks = st.prune(model, "channel", 0.5, example_inputs=(x,))
        self.assertEqual(zero_rows(model.a.weight), zero_rows(model.b.weight))
        self.assertEqual(len(zero_rows(model.a.weight)), 8)
        self.assertEqual(len(zero_rows(model.c.weight)), 4)
        self.assertNotIn("fc", masks)  # the output: never pruned
        # Again, with the first masks' hooks on: the export must not trace them.
        masks = st.prune(model, "channel", 0.5, example_inputs=(x,))
        self.assertEqual(len(zero_rows(model.a.weight)), 8)
        with tempfile.TemporaryDirectory() as d:
            path, spec = os.path.join(d, "m.onnx"), os.path.join(d, "m.json")
            st.export(model, (x,), path, tesa_out=spec, input_names=["x"], output_names=["y"])
            import onnx
            self.assertNotIn("Mul", {n.op_type for n in onnx.load(path).graph.node})
            y = sparta.compile(path, tesa=spec).run({"x": x.numpy()})["y"]
            np.testing.assert_allclose(y, model(x).detach().numpy(), rtol=1e-4, atol=1e-5)
            self.assertEqual(sorted(f for f in os.listdir(d) if "tmp" in f), [])

    def test_first_order_scores(self):
        model = Mlp()
        model(torch.randn(8, 32)).square().mean().backward()
        m1 = st.compute_masks(model, "unstructured", 0.5, use_gradients=True)
        m2 = st.compute_masks(model, "unstructured", 0.5)
        self.assertTrue(any((m1[k] != m2[k]).any() for k in m1))

    def test_errors(self):
        model = Mlp()
        with self.assertRaises(sparta.Error):
            st.prune(model, "unstructured", 0.5, skip=["nothere"])
        with self.assertRaises(sparta.Error):
            st.prune(model, "channel", 0.5)  # needs example_inputs
        with self.assertRaises(sparta.Error):
            st.prune(model, "unstructured", 1.2)
        with self.assertRaises(sparta.Error):
            st.compute_masks(model, "unstructured", 0.5, use_gradients=True)  # no backward yet


class Datasets(unittest.TestCase):
    def test_fashion_mnist_errors(self):
        import sparta.datasets as ds
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(FileNotFoundError):
                ds.fashion_mnist("test", root=d)
            import gzip
            for name, body in (("t10k-images-idx3-ubyte.gz", b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") +
                                (28).to_bytes(4, "big") * 2 + bytes(100)),
                               ("t10k-labels-idx1-ubyte.gz", b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + bytes(2))):
                with gzip.open(os.path.join(d, name), "wb") as f:
                    f.write(body)
            with self.assertRaisesRegex(sparta.Error, "truncated"):
                ds.fashion_mnist("test", root=d)

    @unittest.skipUnless(os.path.exists("/usr/share/datasets/fashion-mnist"), "dataset-fashion-mnist not installed")
    def test_fashion_mnist(self):
        import sparta.datasets as ds
        x, y = ds.fashion_mnist("test")
        self.assertEqual(x.shape, (10000, 28, 28))
        self.assertEqual(np.bincount(y).tolist(), [1000] * 10)


if __name__ == "__main__":
    unittest.main()
