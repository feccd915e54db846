"""Variable-length batches: pack_padded_sequence -> recurrent layer -> pad_packed_sequence.

Exported with the lengths mapped onto the ONNX ops' sequence_lens, and checked against eager
PyTorch on ragged batches at a new shape, padded positions included, with lengths unsorted
where the model allows it.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnx.core.errors import ExportError
from rnnx.exporter.model_io import ModelIO
from rnnx.pipeline import export

LAYERS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class PackedModel(nn.Module):
    def __init__(self, kind: str, bidirectional: bool, batch_first: bool, enforce_sorted: bool,
                 total_length: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.batch_first, self.enforce_sorted, self.total_length = (
            batch_first,
            enforce_sorted,
            total_length,
        )
        self.rnn = LAYERS[kind](
            3, 5, num_layers=2, batch_first=batch_first, bidirectional=bidirectional
        )
        self.head = nn.Linear(5 * (2 if bidirectional else 1), 2)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths.cpu(), self.batch_first, self.enforce_sorted)
        output, hidden = self.rnn(packed)
        time = x.shape[1 if self.batch_first else 0] if self.total_length else None
        padded, _ = pad_packed_sequence(output, self.batch_first, total_length=time)
        return self.head(padded), hidden[0] if isinstance(hidden, tuple) else hidden

    def io(self) -> ModelIO:
        sequence = ("batch", "time", None) if self.batch_first else ("time", "batch", None)
        return ModelIO(inputs=("x", "lengths"), dims={"x": sequence, "lengths": ("batch",)},
                       outputs=("y", "h_n"), lengths=("lengths",))  # fmt: skip


CASES = list(itertools.product(LAYERS, (False, True), (False, True), (True, False)))


@pytest.mark.parametrize("kind, bidirectional, batch_first, enforce_sorted", CASES,
                         ids=["-".join(map(str, c)) for c in CASES])  # fmt: skip
def test_ragged_batches_match_eager(
    tmp_path, kind, bidirectional, batch_first, enforce_sorted
) -> None:
    model = PackedModel(kind, bidirectional, batch_first, enforce_sorted).eval()
    example_x = torch.randn(3, 6, 3) if batch_first else torch.randn(6, 3, 3)
    result = export(
        model, tmp_path / "m", example_inputs=(example_x, torch.tensor([6, 4, 2])), io=model.io()
    )
    assert result.report.passed and not result.manifest.doctor

    x = torch.randn(4, 9, 3) if batch_first else torch.randn(9, 4, 3)
    lengths = torch.tensor([9, 7, 3, 1]) if enforce_sorted else torch.tensor([3, 9, 1, 7])
    with torch.no_grad():
        expected = [t.numpy() for t in model(x, lengths)]
    session = ort.InferenceSession(
        tmp_path / "m" / "model.onnx", providers=["CPUExecutionProvider"]
    )
    actual = session.run(None, {"x": x.numpy(), "lengths": lengths.numpy()})
    scripted = torch.jit.load(tmp_path / "m" / "model.torchscript.pt")
    with torch.no_grad():
        traced = [t.numpy() for t in scripted(x, lengths)]
    for got, ts, want in zip(actual, traced, expected):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)
        np.testing.assert_allclose(ts, want, atol=1e-5, rtol=1e-4)
    padded_rows = (slice(None), 3) if batch_first else (slice(1, None), 2)  # length-1 sequence
    np.testing.assert_allclose(actual[0][padded_rows], expected[0][padded_rows], atol=1e-6)


def test_without_total_length_the_output_spans_the_longest_sequence(tmp_path) -> None:
    model = PackedModel("gru", False, True, False, total_length=False).eval()
    example = (torch.randn(3, 6, 3), torch.tensor([6, 4, 2]))
    result = export(model, tmp_path / "m", example_inputs=example, io=model.io())
    assert result.report.passed
    # a batch padded past its longest sequence: eager ends at the longest, and so does the graph
    x, lengths = torch.randn(2, 9, 3), torch.tensor([5, 3])
    with torch.no_grad():
        expected = model(x, lengths)[0].numpy()
    assert expected.shape[1] == 5
    got = ort.InferenceSession(str(tmp_path / "m" / "model.onnx")).run(
        None, {"x": x.numpy(), "lengths": lengths.numpy()}
    )[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_packed_projected_lstm_is_a_clear_error(tmp_path) -> None:
    model = PackedModel("lstm", False, False, True).eval()
    model.rnn = nn.LSTM(3, 8, num_layers=2, proj_size=5)
    example = (torch.randn(6, 3, 3), torch.tensor([6, 4, 2]))
    with pytest.raises(ExportError, match="proj_size is not supported yet"):
        export(model, tmp_path / "m", example_inputs=example, io=model.io())
