"""The onnx-folded format: projected LSTMs as native LSTM ops, the projection folded into the
recurrent weight (rnnx/exporter/lowering.py). The conformance table (tests/test_conformance.py)
verifies it in every runtime that reads it; these are its own cases."""

from __future__ import annotations

import onnx
import pytest
import torch
from torch import nn

import rnnx
from rnnx.core.errors import RnnxWarning
from rnnx.pipeline import ExportOptions, export
from rnnx.tune import TuneOptions, tune

FORMATS = ExportOptions(formats=("onnx", "onnx-folded"))


def _op_types(path) -> list[str]:
    return [node.op_type for node in onnx.load(path).graph.node]


class Tagger(nn.Module):
    """A whole model: embedding, a projected bidirectional LSTM, a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 6)
        self.lstm = nn.LSTM(6, 8, num_layers=2, proj_size=3, bidirectional=True, batch_first=True)
        self.out = nn.Linear(6, 2)

    def forward(self, x):
        return self.out(self.lstm(torch.tanh(self.embed(x)))[0])

    def example_inputs(self):
        return (torch.randn(2, 5, 4),)


def test_a_whole_model_folds_into_native_ops_and_verifies(tmp_path) -> None:
    result = export(Tagger().eval(), tmp_path / "tagger", FORMATS)
    assert result.report.passed and "onnx-folded" in result.report.summary()
    ops = _op_types(tmp_path / "tagger" / "model.folded.onnx")
    assert ops.count("LSTM") == 2 and "Scan" not in ops
    assert result.manifest.artifacts["onnx-folded"] == "model.folded.onnx"


def test_a_projection_without_a_right_inverse_is_not_folded(tmp_path) -> None:
    layer = nn.LSTM(4, 8, proj_size=3).eval()
    with torch.no_grad():
        layer.weight_hr_l0[2] = layer.weight_hr_l0[0]  # rank 2 < proj_size 3
    with pytest.warns(RnnxWarning, match="onnx-folded: .*no exact right inverse.*rank 2"):
        result = export(layer, tmp_path / "rank", FORMATS)
    assert "onnx-folded" not in result.manifest.artifacts
    assert result.report.passed  # the Scan lowering does not need one


def test_a_model_without_a_projection_writes_no_folded_model(tmp_path) -> None:
    with pytest.warns(RnnxWarning, match="onnx-folded: no projected LSTM"):
        result = export(nn.GRU(4, 5).eval(), tmp_path / "gru", FORMATS)
    assert set(result.manifest.artifacts) == {"onnx"}


def test_tune_measures_the_folded_model_beside_the_scan(tmp_path) -> None:
    export(nn.LSTM(4, 8, proj_size=3).eval(), tmp_path / "proj", FORMATS)
    result = tune(tmp_path / "proj", TuneOptions(times=(10,), repeats=2))
    assert {"onnxruntime", "onnxruntime:onnx-folded"} <= {r.runtime for r in result.rows}
    assert not [name for name in result.rejected if "onnx-folded" in name]
    session = rnnx.load(tmp_path / "proj", "onnxruntime", format="onnx-folded")
    assert session.run({"input": torch.randn(7, 2, 4).numpy()})["h_n"].shape == (1, 2, 3)
