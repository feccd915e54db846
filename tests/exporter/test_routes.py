"""Capture routes (rnnx/exporter/routes.py): when rnnx's own route cannot capture a model, the
next routes are tried in order and the first whose graph verifies at new shapes is kept; every
refusal names the line of the user's code where capture stopped, and the fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rnnx
from rnnx.core.errors import RnnxError, RnnxWarning
from rnnx.exporter.routes import ROUTES
from rnnx.inspect import format_text, inspect
from rnnx.pipeline import ExportOptions, export


def _line(text: str) -> str:
    """`test_routes.py:N` of the first line of this file that contains `text`."""
    with open(__file__) as source:
        number = next(i for i, line in enumerate(source, 1) if text in line)
    return f"test_routes.py:{number}"


def resample_frac(x: torch.Tensor, old_sr: int, new_sr: int) -> torch.Tensor:
    """Library code as a resampler writes it (julius.resample_frac's shape): the output length
    computed in Python from the input's size, then a tensor used as a slice bound."""
    length = x.shape[-1]
    output_length = torch.ceil(torch.as_tensor(new_sr * length / old_sr)).long()
    y = torch.repeat_interleave(x, 2, dim=-1)
    return y[..., :output_length]  # the slice bound torch.export cannot keep symbolic


class Resampled(nn.Module):
    """Audio features resampled by 3/2 in Python, then a GRU: (batch, channels, time)."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(4, 6, batch_first=True)

    def forward(self, x):
        y, _ = self.rnn(resample_frac(x, 2, 3).transpose(1, 2))
        return y


def test_size_arithmetic_in_library_code_falls_back_to_a_verified_route(tmp_path) -> None:
    model = Resampled().eval()
    result = export(model, tmp_path / "out", ExportOptions(formats=("onnx",)),
                    example_inputs=(torch.randn(2, 4, 6),))  # fmt: skip
    note = result.manifest.notes["onnx"]
    assert note["route"] == "torch.onnx-legacy"
    failed = note["routes_failed"]
    assert [f["route"] for f in failed] == ["torch.export", "torch.export-auto"]
    # rnnx's own route names the line it stopped at, not a frame inside torch
    assert failed[0]["reason"].startswith(_line("return y[..., :output_length]"))
    assert result.report.passed and result.report.artifact_passed("onnx")
    # the kept graph matches eager at a shape it was not traced at
    x = torch.randn(3, 4, 11)
    got = rnnx.load(tmp_path / "out").run({"x": x.numpy()})["output"]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), atol=1e-5)
    text = format_text(inspect(tmp_path / "out"))
    assert "onnx: captured by route torch.onnx-legacy" in text
    assert "onnx: route torch.export failed: test_routes.py:" in text
    # the route and the earlier failures are on disk, for any reader
    written = json.loads((tmp_path / "out" / "rnnx.json").read_text())
    assert written["notes"]["onnx"]["route"] == "torch.onnx-legacy"


class BranchOnValues(nn.Module):
    """A branch on tensor values: every route captures one branch only, so none verifies."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 4)

    def forward(self, x):
        if x.sum() > 0:  # the branch on values
            x = x * 2
        y, _ = self.rnn(x)
        return y


def test_a_route_whose_graph_does_not_verify_never_ships(tmp_path) -> None:
    example = (torch.ones(5, 2, 3),)
    with pytest.warns(RnnxWarning), pytest.raises(RnnxError) as refused:
        export(BranchOnValues().eval(), tmp_path / "out", ExportOptions(formats=("onnx",)),
               example_inputs=example)  # fmt: skip
    message = str(refused.value)
    assert "\n" not in message
    assert _line("if x.sum() > 0:") in message  # rnnx's own route's reason, with its line
    assert not (tmp_path / "out").exists()


def test_routes_are_tried_in_a_fixed_order() -> None:
    assert [r.name for r in ROUTES] == ["torch.export", "torch.export-auto", "torch.onnx-legacy"]


class HostNumpyLengths(nn.Module):
    """Lengths moved to the host, then numpy arithmetic on them (a subsampling front end)."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(4, 6, batch_first=True)

    def forward(self, x, lengths):
        lengths = lengths.cpu().numpy()
        halved = np.ceil(lengths / 2).astype(np.int64)  # numpy arithmetic on host lengths
        x = x[:, ::2]
        packed = nn.utils.rnn.pack_padded_sequence(x, torch.as_tensor(halved), batch_first=True,
                                                   enforce_sorted=False)  # fmt: skip
        y, _ = self.rnn(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        return y


def test_numpy_arithmetic_on_host_lengths_is_refused_at_its_line_with_the_fix(tmp_path) -> None:
    example = (torch.randn(2, 6, 4), torch.tensor([6, 4]))
    with pytest.raises(RnnxError) as refused:
        export(HostNumpyLengths().eval(), tmp_path / "out", example_inputs=example)
    message = str(refused.value)
    assert message.startswith(_line("halved = np.ceil(lengths / 2)"))
    assert "numpy arithmetic" in message and "torch.ceil(lengths / 2).long()" in message
    assert "\n" not in message


class FixedByInt(nn.Module):
    """int() of a size computed in Python: torch.export pins the axis, and says where."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(4, 6, batch_first=True)

    def forward(self, x):  # (batch, 4, time)
        target = int(2 * x.shape[-1] / 2)  # a size through float arithmetic
        y, _ = self.rnn(F.interpolate(x, scale_factor=1.0)[..., :target].transpose(1, 2))
        return y


def test_a_frozen_axis_names_the_users_line_and_the_next_route_keeps_it_dynamic(tmp_path) -> None:
    result = export(FixedByInt().eval(), tmp_path / "out", ExportOptions(formats=("onnx",)),
                    example_inputs=(torch.randn(2, 4, 6),))  # fmt: skip
    note = result.manifest.notes["onnx"]
    assert note["route"] != "torch.export"
    assert note["routes_failed"][0]["reason"].startswith(_line("target = int(2 * x.shape[-1]"))
    assert result.manifest.signature.output("output").dims == ("batch", "time", 6)
