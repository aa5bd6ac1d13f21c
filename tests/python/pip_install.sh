#!/usr/bin/env bash
# `pip install .` from the repository into a new venv (Debian's Python,
# with its site packages for numpy), then the package works there.
# Usage: pip_install.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
/usr/bin/python3 -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$src"
cd "$work"  # not the source tree: the installed copy must be the one imported
env -u PYTHONPATH "$work/venv/bin/python" -s - <<'PY'
import numpy as np, onnx
from onnx import TensorProto, helper, numpy_helper
import sparta
assert "site-packages" in sparta.__file__, sparta.__file__
w = np.arange(32, dtype=np.float32).reshape(4, 8) / 32
g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])], [numpy_helper.from_array(w, "W")])
m = sparta.compile(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
x = np.ones((2, 4), np.float32)
np.testing.assert_allclose(m.run({"x": x})["y"], x @ w, rtol=1e-5)
print("pip install: ok,", sparta.__file__)
PY
