"""What an export's verification decides, per format and per check: a format that fails is left
out (unless named), a NaN probe that eager itself refuses is skipped (and says so), None among
returned states is no output, and streaming is refused only for reasons the model has."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

import rnnx
from rnnx.benchmark import BenchOptions, bench
from rnnx.benchmark.report import format_table
from rnnx.core.errors import RnnxError, RnnxWarning, VerificationError
from rnnx.exporter.checkpoint import LoadOptions
from rnnx.inspect import format_text, inspect
from rnnx.pipeline import ExportOptions, export, export_checkpoint
from rnnx.tune import TuneOptions, tune


def _line(text: str) -> str:
    """`test_outcomes.py:N` of the first line of this file that contains `text`."""
    with open(__file__) as source:
        number = next(i for i, line in enumerate(source, 1) if text in line)
    return f"test_outcomes.py:{number}"


class SizesThroughData(nn.Module):
    """Reads its sizes through `x.data.shape`: a trace records them as constants."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(4, 6, batch_first=True)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        batch, time, _ = x.data.shape
        y, _ = self.rnn(x)
        return self.head(y.reshape(batch * time, -1)).view(batch, time, -1)  # baked in a trace


def test_a_default_format_that_fails_verification_is_left_out_naming_the_line(tmp_path) -> None:
    example = (torch.randn(2, 5, 4),)
    with pytest.warns(RnnxWarning, match="torchscript: left out") as caught:
        result = export(SizesThroughData().eval(), tmp_path / "out", example_inputs=example)
    warning = next(str(w.message) for w in caught if "left out" in str(w.message))
    assert _line("return self.head(y.reshape(batch * time") in warning
    assert "--format onnx" in warning
    manifest = result.manifest
    assert list(manifest.artifacts) == ["onnx"]
    assert not (tmp_path / "out" / "model.torchscript.pt").exists()
    assert "fails verification" in manifest.notes["torchscript"]["skipped"]
    assert result.report.passed and {c.artifact for c in result.report.checks} == {"onnx"}
    text = format_text(inspect(tmp_path / "out"))
    assert "torchscript: not written: fails verification" in text


def test_a_format_named_by_the_user_that_fails_verification_fails_the_export(tmp_path) -> None:
    options = ExportOptions(formats=("onnx", "torchscript"))
    with pytest.raises(VerificationError, match="torchscript .*test_outcomes.py:"):
        export(SizesThroughData().eval(), tmp_path / "out", options,
               example_inputs=(torch.randn(2, 5, 4),))  # fmt: skip
    assert not (tmp_path / "out").exists()


class AssertsFinite(nn.Module):
    """A check on values in forward, true for any finite input."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(4, 6, batch_first=True)

    def forward(self, x, h0):
        assert torch.isfinite(x).all(), "non-finite input"
        return self.rnn(x, h0)


def test_the_nan_probe_is_skipped_when_eager_raises_on_nan(tmp_path) -> None:
    example = (torch.randn(2, 5, 4), torch.zeros(1, 2, 6))
    result = export(AssertsFinite().eval(), tmp_path / "out", ExportOptions(formats=("onnx",)),
                    example_inputs=example)  # fmt: skip
    report = result.report
    assert report.passed
    skipped = [c for c in report.checks if c.passed is None]
    assert len(skipped) == 1 and skipped[0].initial_state == "nan-input"
    reason = f"eager raises on NaN input (AssertionError at {_line('assert torch.isfinite')})"
    assert skipped[0].skipped == reason
    assert report.summary()["onnx"]["skipped"] == [reason]
    # skipped is neither a pass nor a failure: a report of skipped checks only does not pass
    assert not type(report)(report.atol, report.rtol, skipped).passed
    assert f"onnx: a check skipped: {reason}" in format_text(inspect(tmp_path / "out"))


class BatchOneState(nn.Module):
    """A tagger written for batch 1: its initial state is built with batch 1."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(4, 6, batch_first=True)

    def forward(self, x):
        return self.rnn(x, torch.zeros(1, 1, 6))[0]


def test_the_nan_probe_skipped_at_a_batch_the_model_does_not_take_says_so(tmp_path) -> None:
    """The NaN probe runs two sequences: a model with batch 1 built in cannot take them, and
    the skipped check names the batch, not the NaN."""
    with pytest.warns(RnnxWarning, match="frozen-batch"):
        result = export(BatchOneState().eval(), tmp_path / "out", ExportOptions(formats=("onnx",)),
                        example_inputs=(torch.randn(1, 5, 4),))  # fmt: skip
    skipped = [c.skipped for c in result.report.checks if c.passed is None]
    assert result.report.passed and skipped, result.report.checks
    assert skipped[0].startswith("eager raises at batch 2 (RuntimeError at "), skipped


class BlocksWithoutState(nn.Module):
    """Per-block states as a list whose first block (a feed-forward one) has none."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(3, 5)
        self.second = nn.GRU(5, 4)
        self.third = nn.GRU(4, 4)

    def forward(self, x, states):
        _, h2, h3 = states
        y, h2 = self.second(torch.tanh(self.first(x)), h2)
        y, h3 = self.third(y, h3)
        return y, [None, h2, h3]


def test_none_among_returned_states_is_no_output(tmp_path) -> None:
    model = BlocksWithoutState().eval()
    example = (torch.randn(5, 2, 3), [None, torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)])
    result = export(model, tmp_path / "out", ExportOptions(formats=("onnx",)),
                    example_inputs=example)  # fmt: skip
    signature = result.manifest.signature
    assert signature.input_names == ["x", "states.1", "states.2"]
    assert signature.state_pairs == (("states_out.1", "states.1"), ("states_out.2", "states.2"))
    assert signature.streamable and result.report.passed
    session = rnnx.load(tmp_path / "out")
    x = torch.randn(9, 1, 3)
    whole = session.run({"x": x.numpy()})
    stream = session.stream()
    pieces = [stream.step(x[i : i + 4].numpy()) for i in range(0, 9, 4)]
    np.testing.assert_allclose(np.concatenate([p["output"] for p in pieces]), whole["output"],
                               atol=1e-5)  # fmt: skip


class DecoderStep(nn.Module):
    """One step of an attention decoder (no time axis): it holds the bidirectional encoder
    but its forward does not run it, and it takes no lengths."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.LSTM(3, 4, bidirectional=True)  # used by another method
        self.cell = nn.GRUCell(5, 8)
        self.attend = nn.Linear(8, 8)

    def forward(self, token, memory, h):
        scores = torch.einsum("bd,btd->bt", self.attend(h), memory).softmax(-1)
        context = torch.einsum("bt,btd->bd", scores, memory)
        h = self.cell(torch.cat([token, context[:, :1]], -1), h)
        return context + h, h


def test_a_decoder_step_streams_and_only_applicable_reasons_are_given(tmp_path) -> None:
    example = (torch.randn(2, 4), torch.randn(2, 6, 8), torch.zeros(2, 8))
    result = export(DecoderStep().eval(), tmp_path / "step", ExportOptions(formats=("onnx",)),
                    example_inputs=example)  # fmt: skip
    assert result.manifest.signature.streamable  # the unused bidirectional encoder is no reason
    assert not [d for d in result.manifest.doctor if d["hazard"] == "not-streamable"]


class PaddedBatches(nn.Module):
    """A lengths input: whole padded sequences, no bidirectional layer, no front end."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 4)

    def forward(self, x, lengths, h0):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        y, h = self.rnn(packed, h0)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, total_length=x.shape[0])
        return y, h


def test_a_model_that_cannot_stream_is_refused_for_its_own_reason_only(tmp_path) -> None:
    example = (torch.randn(5, 2, 3), torch.tensor([5, 3]), torch.zeros(1, 2, 4))
    result = export(PaddedBatches().eval(), tmp_path / "out", ExportOptions(formats=("onnx",)),
                    example_inputs=example)  # fmt: skip
    reasons = [d["message"] for d in result.manifest.doctor if d["hazard"] == "not-streamable"]
    assert reasons == ["the model cannot stream: it takes a lengths input ('lengths'), which "
                       "describes whole sequences"]  # fmt: skip
    with pytest.raises(RnnxError) as refused:
        rnnx.load(tmp_path / "out").stream()
    assert "lengths input ('lengths')" in str(refused.value)
    assert "bidirectional" not in str(refused.value) and "front end" not in str(refused.value)


def test_a_default_format_that_cannot_be_written_is_left_out(tmp_path, monkeypatch) -> None:
    monkeypatch.delattr(torch.jit, "trace")  # torch.jit.trace gone (newer Pythons)
    with pytest.warns(RnnxWarning, match="torchscript: left out, it cannot be written"):
        result = export(nn.GRU(3, 4).eval(), tmp_path / "out")
    assert list(result.manifest.artifacts) == ["onnx"] and result.report.passed
    assert "torch.jit.trace is not available" in result.manifest.notes["torchscript"]["skipped"]


class OneSentenceStep(nn.Module):
    """A decoder step written for batch 1 (`.view(1, 1, -1)`, the tutorials' style), with a
    memory input that has no batch axis at all (one sentence's encoder outputs, padded to 6)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 8)
        self.attend = nn.Linear(6 * 8, 8)
        self.gru = nn.GRU(16, 8)
        self.out = nn.Linear(8, 20)

    def forward(self, token, hidden, memory):
        embedded = self.embedding(token).view(1, 1, -1)
        context = self.attend(memory.view(1, 1, -1))
        output, hidden = self.gru(torch.cat((embedded, context), 2), hidden)
        return torch.log_softmax(self.out(output[0]), dim=1), hidden


def test_a_model_written_for_one_shape_exports_with_fixed_shapes(tmp_path) -> None:
    """As the stock exporters write it (every axis fixed), verified, the line named once."""
    torch.manual_seed(0)
    model = OneSentenceStep().eval()
    example = (torch.tensor([[3]]), torch.randn(1, 1, 8), torch.randn(6, 8))
    with pytest.warns(RnnxWarning, match="fixed-shapes") as caught:
        result = export(model, tmp_path / "out", example_inputs=example)
    warning = next(str(w.message) for w in caught if "fixed-shapes" in str(w.message))
    assert re.search(r"at batch 2 it fails at test_outcomes\.py:\d+", warning)
    signature = result.manifest.signature
    assert signature.fixed_shapes and result.report.passed
    assert [t.dims for t in signature.inputs] == [(1, 1), (1, 1, 8), (6, 8)]
    session = rnnx.load(tmp_path / "out")
    feeds = (torch.tensor([[7]]), torch.randn(1, 1, 8), torch.randn(6, 8))
    outputs = session.run(dict(zip(signature.input_names, (f.numpy() for f in feeds))))
    with torch.inference_mode():
        expected = model(*feeds)
    for name, value in zip(signature.output_names, expected):
        np.testing.assert_allclose(outputs[name], value.numpy(), atol=1e-5)
    with pytest.raises(RnnxError, match=r"input 'token'.*\[1, 1\]"):
        session.run({"token": np.zeros((2, 1), np.int64), "hidden": feeds[1].numpy(),
                     "memory": feeds[2].numpy()})  # fmt: skip
    assert "fixed shapes" in format_text(inspect(tmp_path / "out"))
    # its report names no batch or length: none ran but the fixed shapes
    whole = [c.describe() for c in result.report.checks if c.chunk is None and not c.skipped]
    assert whole and all("its fixed shapes" in d and "batch" not in d for d in whole), whole


class OneShapeStepWithExample(OneSentenceStep):
    """The same step as a pickled module that brings its example: `rnnx verify` and `tune` can
    rebuild it (a module exported from memory has no reference for them)."""

    def example_inputs(self) -> tuple:
        return torch.tensor([[3]]), torch.randn(1, 1, 8), torch.randn(6, 8)


def test_a_fixed_shape_export_is_benchmarked_and_tuned_at_its_one_shape(tmp_path) -> None:
    torch.manual_seed(0)
    torch.save(OneShapeStepWithExample().eval(), tmp_path / "step.pt")
    trust = LoadOptions(trust_checkpoint=True)
    with pytest.warns(RnnxWarning, match="fixed-shapes"):
        export_checkpoint(tmp_path / "step.pt", tmp_path / "out", ExportOptions(), trust)
    options = BenchOptions(runtimes=("eager", "onnxruntime"), batches=(1, 4), times=(1, 100),
                           repeats=2, warmup=0, trust=trust)  # fmt: skip
    rows = bench(tmp_path / "out", options)
    assert sorted(r.runtime for r in rows) == ["eager", "onnxruntime"]  # one size, not four
    assert all(r.batch is None and r.time is None and r.frames_per_s is None for r in rows)
    assert format_table(rows).splitlines()[2].split()[1:3] == ["-", "-"]
    # what tune records for it (a batch of 1, the contract's least) opens with "auto"
    tune(tmp_path / "out", TuneOptions(batches=(1, 4), times=(1,), repeats=2, trust=trust))
    tuned = rnnx.load(tmp_path / "out", "auto", batch=4)
    eager = rnnx.load(tmp_path / "out", "eager", trust=trust)
    other = torch.tensor([[7]]), torch.randn(1, 1, 8), torch.randn(6, 8)
    feeds = dict(zip(tuned.signature.input_names, (t.numpy() for t in other)))
    for name, value in eager.run(feeds).items():  # the fastest may be bf16: its tolerance
        np.testing.assert_allclose(tuned.run(feeds)[name], value, atol=3e-2, rtol=3e-2)


class WithPythonArguments(nn.Module):
    """forward takes a ratio and a flag as Python values besides its tensors (a decoder's
    `teacher_forcing_ratio`, an inference switch)."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 6)

    def forward(self, x, scale, reverse, hidden=None):
        y, hidden = self.gru(x.flip(0) if reverse else x, hidden)
        return y * scale, hidden


def test_python_numbers_among_arguments_are_bound_at_their_value(tmp_path) -> None:
    """As the stock exporters bind them: said once per value, never silently an input."""
    torch.manual_seed(0)
    model = WithPythonArguments().eval()
    example = (torch.randn(5, 2, 4), 0.5, True, None)
    with pytest.warns(RnnxWarning, match=r"'scale' is a Python float \(0\.5\).*scale=0\.5") as got:
        result = export(model, tmp_path / "out", example_inputs=example)
    assert any("'reverse' is a Python bool (True)" in str(w.message) for w in got)
    assert all(w.filename == __file__ for w in got if "Python" in str(w.message))
    assert result.report.passed and result.manifest.signature.input_names == ["x"]
    x = torch.randn(9, 3, 4)
    outputs = rnnx.load(tmp_path / "out").run({"x": x.numpy()})
    with torch.inference_mode():
        expected, _ = model(x, 0.5, True)
    np.testing.assert_allclose(outputs["output_0"], expected.numpy(), atol=1e-5)
