"""NaN is never hidden: onnxruntime's CPU LSTM/GRU kernels turn a NaN input into finite
outputs; rnnx sessions give NaN to the affected sequences (or refuse, non_finite="error")."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import rnnx
from rnnx.cli import main
from rnnx.core.errors import InputError, RnnxError


@pytest.mark.upstream
@pytest.mark.parametrize("op, gates", [("LSTM", 4), ("GRU", 3)])
def test_onnxruntime_cpu_kernels_hide_nan(op, gates) -> None:
    """One LSTM/GRU node with a bias input: a NaN in X comes out as finite Y and Y_h
    (onnxruntime 1.32, CPU). When this fails, onnxruntime propagates NaN itself and
    rnnx/runtimes/non_finite.py may be retired."""
    hidden, size = 8, 3
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal((1, gates * hidden, size), np.float32), "W"),
        numpy_helper.from_array(rng.standard_normal((1, gates * hidden, hidden), np.float32), "R"),
        numpy_helper.from_array(np.zeros((1, 2 * gates * hidden), np.float32), "B"),
    ]
    node = helper.make_node(op, ["X", "W", "R", "B"], ["Y", "Y_h"], hidden_size=hidden)
    graph = helper.make_graph(
        [node],
        "one_node",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", size])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("Y", "Y_h")],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.zeros((3, 2, size), np.float32)
    x[1, 0, 0] = np.nan
    y, y_h = session.run(None, {"X": x})
    assert np.isfinite(y).all() and np.isfinite(y_h).all()


@pytest.fixture(scope="module", params=[nn.LSTM, nn.GRU])
def export(request, tmp_path_factory):
    torch.manual_seed(0)
    layer = request.param(3, 8).eval()
    directory = tmp_path_factory.mktemp("nan") / "export"
    rnnx.export(layer, directory)
    return directory


def _with_nan(batch: int = 3, sequence: int = 1, step: int = 2) -> np.ndarray:
    x = np.random.default_rng(1).random((5, batch, 3), dtype=np.float32)
    x[step, sequence, 0] = np.nan
    return x


def test_nan_reaches_the_affected_sequence_only(export) -> None:
    x = _with_nan()
    eager = rnnx.load(export, "eager").run({"input": x})
    outputs = rnnx.load(export).run({"input": x})
    for name, array in outputs.items():
        assert np.isnan(array[..., 1, :]).all(), name  # the whole sequence, states too
        assert np.isnan(eager[name][..., 1, :]).any(), name
        others = [0, 2]
        np.testing.assert_allclose(array[..., others, :], eager[name][..., others, :], atol=1e-5)


def test_nan_in_a_stream_stays_in_its_state(export) -> None:
    stream = rnnx.load(export).stream(3)
    x = _with_nan()
    first = stream.step(x[:3])
    assert np.isnan(first["output"][:, 1]).all() and not np.isnan(first["output"][:, 0]).any()
    assert all(np.isnan(state[:, 1]).all() for state in stream.state.values())
    later = stream.step(np.ones((2, 3, 3), np.float32))  # clean input: the state is NaN
    assert np.isnan(later["output"][:, 1]).all() and np.isfinite(later["output"][:, 0]).all()


def test_non_finite_error(export) -> None:
    session = rnnx.load(export, non_finite="error")
    x = np.zeros((5, 2, 3), np.float32)
    assert np.isfinite(session.run({"input": x})["output"]).all()
    for bad in (np.nan, np.inf):
        x[0, 0, 0] = bad
        with pytest.raises(InputError, match="'input' holds NaN or infinity"):
            session.run({"input": x})
        with pytest.raises(InputError, match="'input'"):
            session.stream(2).step(x)
    with pytest.raises(RnnxError, match="non_finite must be one of propagate, error"):
        rnnx.load(export, non_finite="mask")


def test_rnnx_run_writes_nan(export, tmp_path) -> None:
    np.save(tmp_path / "x.npy", _with_nan())
    args = ["run", str(export), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npz")]
    assert CliRunner().invoke(main, args).exit_code == 0
    with np.load(tmp_path / "y.npz") as y:
        assert np.isnan(y["output"][:, 1]).all() and np.isfinite(y["output"][:, 0]).all()
