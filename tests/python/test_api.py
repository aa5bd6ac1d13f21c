"""The Python package: compile, run, save, load, report and prune, on a
small model built here with onnx.helper; numpy in and out; errors are
sparta.Error (or FileNotFoundError) with sparta's message, never a crash.

Run by ctest with PYTHONPATH=<build>/python (tests/CMakeLists.txt)."""
import json
import os
import tempfile
import unittest

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import sparta


def mlp_bytes(seed=0, hidden=64):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(32, hidden)).astype(np.float32)
    b1 = rng.normal(size=(hidden,)).astype(np.float32)
    w2 = rng.normal(size=(hidden, 16)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W1"], ["h0"], name="fc1"),
         helper.make_node("Add", ["h0", "b1"], ["h1"], name="bias1"),
         helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
         helper.make_node("MatMul", ["h2", "W2"], ["y"], name="fc2")],
        "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])],
        [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(b1, "b1"), numpy_helper.from_array(w2, "W2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    return m.SerializeToString(), (w1, b1, w2)


def reference(x, w1, b1, w2):
    return np.maximum(x @ w1 + b1, 0) @ w2


class Api(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.bytes, self.w = mlp_bytes()
        self.path = os.path.join(self.dir.name, "mlp.onnx")
        with open(self.path, "wb") as f:
            f.write(self.bytes)
        self.x = np.random.default_rng(1).normal(size=(3, 32)).astype(np.float32)

    def tearDown(self):
        self.dir.cleanup()

    def test_compile_run_save_load(self):
        for source in (self.path, self.bytes):
            m = sparta.compile(source, threads=2)
            y = m.run({"x": self.x})["y"]
            self.assertEqual(y.dtype, np.float32)
            np.testing.assert_allclose(y, reference(self.x, *self.w), rtol=1e-4, atol=1e-4)
        self.assertEqual(m.inputs, [("x", "f32", [-1, 32])])
        out = os.path.join(self.dir.name, "mlp.sparta")
        m.save(out)
        loaded = sparta.load(out)
        np.testing.assert_array_equal(loaded.run({"x": self.x})["y"], m.run({"x": self.x})["y"])
        rep = m.report()
        self.assertIn("layers", rep)
        self.assertIsInstance(json.dumps(rep), str)

    def test_prune_then_compile(self):
        out = os.path.join(self.dir.name, "pruned.onnx")
        spec = os.path.join(self.dir.name, "pruned.json")
        r = sparta.prune(self.path, out, pattern="block", block="4x1", sparsity=0.75, tesa_out=spec, verbose=False)
        self.assertEqual(len(r["layers"]), 2)
        self.assertTrue(all(abs(l["density_after"] - 0.25) < 1e-9 for l in r["layers"]))
        self.assertIn("block 4x1", r["layers"][1]["pattern"])
        self.assertTrue(os.path.exists(out) and os.path.exists(spec))
        pruned = onnx.load(out)
        w1 = numpy_helper.to_array(next(t for t in pruned.graph.initializer if t.name == "W1"))
        self.assertAlmostEqual(float((w1 == 0).mean()), 0.75)
        # The spec on the unpruned model gives the pruned model's outputs.
        y_spec = sparta.compile(self.path, tesa=spec).run({"x": self.x})["y"]
        y_pruned = sparta.compile(out).run({"x": self.x})["y"]
        np.testing.assert_allclose(y_spec, y_pruned, rtol=1e-5, atol=1e-5)
        # In memory, with gradients (first-order scores) and N:M.
        g = {"W1": np.ones((32, 64), np.float32)}
        r = sparta.prune(self.bytes, pattern="nm", nm=(2, 4), gradients=g, verbose=False)
        self.assertAlmostEqual(r.sparsity, 0.5)
        self.assertIsInstance(r["model"], bytes)

    def test_target_speedup(self):
        bytes_, _ = mlp_bytes(hidden=1024)
        r = sparta.prune(bytes_, target_speedup=1.05, verbose=False)
        self.assertGreater(r["unpruned_ms"], 0)  # timings: present, not asserted (a shared machine)
        self.assertGreater(r["estimated_ms"], 0)
        self.assertGreater(r["measured_ms"], 0)
        self.assertTrue(any(l["note"] for l in r["layers"]))
        with self.assertRaises(ValueError):
            sparta.prune(bytes_, target_speedup=2, sparsity=0.5)
        with self.assertRaisesRegex(sparta.Error, "out of reach"):
            sparta.prune(bytes_, target_speedup=900, verbose=False)

    def test_compute_masks(self):
        w = np.random.default_rng(2).normal(size=(64, 48)).astype(np.float32)
        (m,) = sparta.compute_masks([{"name": "w", "w": w}], pattern="block", block=(8, 1), sparsity=0.5)
        self.assertEqual(m.shape, (64, 48))
        self.assertAlmostEqual(float(m.mean()), 0.5)
        blocks = m.reshape(8, 8, 48)
        self.assertTrue(((blocks == blocks[:, :1, :]).all()))

    def test_errors(self):
        with self.assertRaises(FileNotFoundError):
            sparta.compile(os.path.join(self.dir.name, "nothere.onnx"))
        with self.assertRaises(FileNotFoundError):
            sparta.load(os.path.join(self.dir.name, "nothere.sparta"))
        with self.assertRaisesRegex(sparta.Error, "not a valid ONNX model"):
            sparta.compile(b"garbage")
        with open(os.path.join(self.dir.name, "bad.sparta"), "wb") as f:
            f.write(b"SPARTA garbage")
        with self.assertRaises(sparta.Error):
            sparta.load(os.path.join(self.dir.name, "bad.sparta"))
        m = sparta.compile(self.bytes)
        with self.assertRaisesRegex(sparta.Error, "'z'"):
            m.run({"x": self.x, "z": self.x})
        with self.assertRaisesRegex(sparta.Error, "float64"):
            m.run({"x": self.x.astype(np.float64)})
        with self.assertRaisesRegex(sparta.Error, "shape"):
            m.run({"x": np.zeros((3, 31), np.float32)})
        with self.assertRaises(sparta.Error):
            sparta.compile(self.bytes, threads=0)
        out = os.path.join(self.dir.name, "never.onnx")
        for kwargs in ({"sparsity": 1.0}, {"pattern": "diagonal", "sparsity": 0.5},
                       {"pattern": "block", "block": "5x5", "sparsity": 0.5}, {"sparsity": 0.5, "skip": ["nothere"]},
                       {"pattern": "nm", "nm": "2:4", "sparsity": 0.3}, {"pattern": "block"}):
            with self.assertRaises(sparta.Error, msg=str(kwargs)):
                sparta.prune(self.path, out, verbose=False, **kwargs)
        self.assertEqual([f for f in os.listdir(self.dir.name) if "never" in f or ".tmp." in f], [])
        self.assertTrue(issubclass(sparta.Error, RuntimeError))


if __name__ == "__main__":
    unittest.main()
