"""Operators checked against numpy and PyTorch where ONNX's node tests use
other dtypes or do not reach the forms exports write: Einsum (f32) against
numpy.einsum; LSTM and GRU (bidirectional, several layers) and ConvTranspose
(groups, strides, dilations, output_padding) as torch.onnx exports them,
against PyTorch itself, at two input shapes each.

Run by ctest with PYTHONPATH=<build>/python (tests/CMakeLists.txt)."""
import io
import unittest

import numpy as np
from onnx import TensorProto, helper

import sparta


def one_node_model(op, inputs, attrs, opset=17):
    names = ["x%d" % i for i in range(len(inputs))]
    g = helper.make_graph([helper.make_node(op, names, ["y"], **attrs)], "one",
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape))
                           for n, a in zip(names, inputs)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    return m.SerializeToString(), dict(zip(names, inputs))


class EinsumTest(unittest.TestCase):
    def test_forms_match_numpy(self):
        rng = np.random.default_rng(3)
        cases = [
            ("bij,bjk->bik", [(3, 4, 5), (3, 5, 6)]),
            ("bhqd,bhkd->bhqk", [(2, 3, 4, 8), (2, 3, 5, 8)]),
            ("bhqk,bhkd->bhqd", [(2, 3, 4, 5), (2, 3, 5, 8)]),
            ("ij,jk", [(4, 5), (5, 3)]),
            ("ij->ji", [(4, 5)]),
            ("ij->i", [(4, 5)]),
            ("ii->i", [(5, 5)]),
            ("bii->bi", [(2, 4, 4)]),
            ("i,i->", [(7,), (7,)]),
            ("i,j->ij", [(3,), (4,)]),
            ("...ij,...jk->...ik", [(2, 3, 4, 5), (2, 3, 5, 2)]),
            ("nchw,kc->nkhw", [(2, 3, 4, 5), (6, 3)]),
            ("ijk,ikl->jl", [(3, 4, 5), (3, 5, 2)]),
        ]
        for eq, shapes in cases:
            with self.subTest(eq=eq):
                xs = [rng.normal(size=s).astype(np.float32) for s in shapes]
                model, feeds = one_node_model("Einsum", xs, {"equation": eq})
                got = sparta.compile(model).run(feeds)["y"]
                want = np.einsum(eq, *xs)
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    def test_bad_equation_is_an_error(self):
        x = np.zeros((2, 3), np.float32)
        model, feeds = one_node_model("Einsum", [x], {"equation": "ijk->i"})
        with self.assertRaises(sparta.Error):
            sparta.compile(model).run(feeds)


def outputs_of(module, xs):
    import torch
    with torch.no_grad():
        out = module(*xs)
    return [out] if isinstance(out, torch.Tensor) else list(out)


def torch_export(module, args, names, dynamic):
    import torch
    buf = io.BytesIO()
    n_out = len(outputs_of(module, args))
    torch.onnx.export(module, args, buf, opset_version=14, input_names=names,
                      output_names=["y%d" % i for i in range(n_out)], dynamic_axes=dynamic)
    return buf.getvalue()


class TorchExportsTest(unittest.TestCase):
    def check(self, module, shapes, names, dynamic):
        import torch
        torch.manual_seed(0)
        module.eval()
        first = tuple(torch.randn(*s) for s in shapes[0])
        model = sparta.compile(torch_export(module, first, names, dynamic))
        for shape in shapes:
            xs = tuple(torch.randn(*s) for s in shape)
            got = model.run({n: x.numpy() for n, x in zip(names, xs)})
            for i, w in enumerate(outputs_of(module, xs)):
                np.testing.assert_allclose(got["y%d" % i], w.numpy(), rtol=1e-4, atol=1e-5)

    def test_lstm_and_gru(self):
        import torch

        class Rnn(torch.nn.Module):
            def __init__(self, cell, **kw):
                super().__init__()
                self.rnn = cell(input_size=12, hidden_size=16, **kw)

            def forward(self, x):
                y, h = self.rnn(x)
                return (y,) + (h if isinstance(h, tuple) else (h,))

        dyn = {"x": {0: "t", 1: "b"}}
        for cell in (torch.nn.LSTM, torch.nn.GRU):
            for kw in ({}, {"bidirectional": True}, {"num_layers": 2, "bidirectional": True}):
                with self.subTest(cell=cell.__name__, **kw):
                    self.check(Rnn(cell, **kw), [[(5, 2, 12)], [(9, 3, 12)]], ["x"], dyn)

    def test_conv_transpose(self):
        import torch
        for kw in ({"stride": 2}, {"stride": 2, "output_padding": 1}, {"stride": 3, "padding": 1, "groups": 2},
                   {"stride": 1, "dilation": 2, "padding": 2}, {"stride": 2, "padding": 1, "output_padding": 1}):
            with self.subTest(**kw):
                m = torch.nn.ConvTranspose2d(4, 6, 3, **kw)
                self.check(m, [[(1, 4, 7, 9)], [(2, 4, 5, 6)]], ["x"], {"x": {0: "n", 2: "h", 3: "w"}})


if __name__ == "__main__":
    unittest.main()
