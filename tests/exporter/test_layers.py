"""The configuration table: every kind of recurrent layer, exported and run at new shapes.

Artifacts are checked directly in onnxruntime and TorchScript against the original nn module
(not through rnnx.verify, which has its own tests), at a batch and time other than the export
example, with random initial states.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from rnnx.core.metadata import SCHEMA, parse_metadata
from rnnx.exporter.plan import EXAMPLE_SIZES
from rnnx.exporter.torchscript_export import read_metadata
from rnnx.pipeline import ExportOptions, export

KINDS = {
    "rnn_tanh": lambda **kw: nn.RNN(nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: nn.RNN(nonlinearity="relu", **kw),
    "lstm": nn.LSTM,
    "gru": nn.GRU,
}
NATIVE_OP = {"rnn_tanh": "RNN", "rnn_relu": "RNN", "lstm": "LSTM", "gru": "GRU"}

# kind x layers x bidirectional x batch_first x bias, then projected LSTMs.
TABLE = [
    dict(kind=k, num_layers=n, bidirectional=bi, batch_first=bf, bias=not b)
    for k, n, bi, bf, b in itertools.product(KINDS, (1, 2, 3), *[(False, True)] * 3)
] + [
    dict(kind="lstm", num_layers=n, bidirectional=bi, batch_first=bf, bias=b, proj_size=3)
    for n, bi, bf, b in [(1, False, False, True), (1, True, True, True), (2, False, True, False),
                         (2, True, False, True), (3, True, True, True), (3, False, False, False)]
]  # fmt: skip
ATOL, RTOL = 1e-5, 1e-4
BATCH, TIME = 3, 11  # neither is the export example's
assert (EXAMPLE_SIZES["batch"], EXAMPLE_SIZES["time"]) != (BATCH, TIME)


def _config_id(config: dict) -> str:
    parts = [config["kind"], f"L{config['num_layers']}"]
    parts += [name for name in ("bidirectional", "batch_first") if config[name]]
    parts += [] if config["bias"] else ["nobias"]
    parts += [f"proj{config['proj_size']}"] if config.get("proj_size") else []
    return "-".join(parts)


def _build(config: dict) -> nn.RNNBase:
    kwargs = {k: v for k, v in config.items() if k != "kind"}
    # dropout is inactive in eval mode; give multi-layer stacks some to prove it.
    dropout = 0.3 if config["num_layers"] > 1 else 0.0
    return KINDS[config["kind"]](input_size=4, hidden_size=6, dropout=dropout, **kwargs).eval()


def _reference(layer: nn.RNNBase, x: torch.Tensor, states: list[torch.Tensor]) -> list[np.ndarray]:
    with torch.no_grad():
        output, final = layer(x, tuple(states) if len(states) == 2 else states[0])
    finals = list(final) if isinstance(final, tuple) else [final]
    return [t.numpy() for t in [output, *finals]]


def _random_case(layer: nn.RNNBase) -> tuple[torch.Tensor, list[torch.Tensor]]:
    directions = 2 if layer.bidirectional else 1
    x_shape = (BATCH, TIME, 4) if layer.batch_first else (TIME, BATCH, 4)
    stack = layer.num_layers * directions
    states = [torch.randn(stack, BATCH, layer.proj_size or layer.hidden_size)]
    if isinstance(layer, nn.LSTM):
        states.append(torch.randn(stack, BATCH, layer.hidden_size))
    return torch.randn(x_shape), states


@pytest.mark.parametrize("config", TABLE, ids=_config_id)
def test_layer_exports_and_matches_eager_at_new_shapes(config: dict, tmp_path) -> None:
    layer = _build(config)
    result = export(layer, tmp_path / "out", ExportOptions(verify=False))
    x, states = _random_case(layer)
    expected = _reference(layer, x, states)

    onnx_path = tmp_path / "out" / "model.onnx"
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    feeds = dict(zip([i.name for i in session.get_inputs()], [t.numpy() for t in [x, *states]]))
    for actual, wanted in zip(session.run(None, feeds), expected):
        np.testing.assert_allclose(actual, wanted, atol=ATOL, rtol=RTOL)

    scripted = torch.jit.load(tmp_path / "out" / "model.torchscript.pt")
    with torch.no_grad():
        for actual, wanted in zip(scripted(x, *states), expected):
            np.testing.assert_allclose(actual.numpy(), wanted, atol=ATOL, rtol=RTOL)

    model = onnx.load(onnx_path)
    op_types = [node.op_type for node in model.graph.node]
    if config.get("proj_size"):
        assert op_types.count("Scan") == config["num_layers"] * (
            2 if config["bidirectional"] else 1
        )
    else:
        # One native op per layer, fed by initializers: the gate reordering was folded away.
        assert op_types.count(NATIVE_OP[config["kind"]]) == config["num_layers"]
        assert "Slice" not in op_types
    signature = result.manifest.signature.to_dict()
    assert [i.name for i in model.graph.input] == [t["name"] for t in signature["inputs"]]
    assert [o.name for o in model.graph.output] == [t["name"] for t in signature["outputs"]]
    input_dims = [
        d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim
    ]
    assert input_dims == (["batch", "time", 4] if config["batch_first"] else ["time", "batch", 4])
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata == read_metadata(tmp_path / "out" / "model.torchscript.pt")
    parsed = parse_metadata(metadata, str(onnx_path))
    assert parsed.schema == SCHEMA and parsed.signature == result.manifest.signature
    expected_inputs = ["input", "h0", "c0"] if config["kind"] == "lstm" else ["input", "h0"]
    assert parsed.signature.input_names == expected_inputs
    assert parsed.spec == result.manifest.spec
