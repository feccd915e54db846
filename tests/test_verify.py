"""The verifier: passes faithful artifacts, catches wrong ones, reports every case."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

import rnnx
from rnnx.compare import VerifyOptions, _compare
from rnnx.core.errors import RnnxError, VerificationError
from rnnx.pipeline import ExportOptions, export


@pytest.fixture
def exported_lstm(tmp_path):
    layer = nn.LSTM(4, 6, num_layers=2, batch_first=True).eval()
    export(layer, tmp_path / "lstm", ExportOptions(verify=False))
    return layer, tmp_path / "lstm"


def test_faithful_export_passes_at_every_case(exported_lstm) -> None:
    layer, directory = exported_lstm
    report = rnnx.verify(directory, layer)
    assert report.passed
    cases = {(c.artifact, c.batch, c.time, c.initial_state) for c in report.checks}
    # every artifact, batch 1, an odd batch, time 1 and a long sequence, zero and random state
    for artifact in ("onnx", "torchscript"):
        for batch, time in VerifyOptions().sizes:
            for state in ("zero", "random"):
                assert (artifact, batch, time, state) in cases
    assert {c.output for c in report.checks} == {"output", "h_n", "c_n"}
    assert all(c.max_abs_error < 1e-5 for c in report.checks)


def test_tampered_onnx_weights_fail(exported_lstm) -> None:
    layer, directory = exported_lstm
    model = onnx.load(directory / "model.onnx")
    weight = model.graph.initializer[0]
    array = numpy_helper.to_array(weight).copy()
    array.flat[0] += 0.05
    weight.CopyFrom(numpy_helper.from_array(array, weight.name))
    onnx.save(model, directory / "model.onnx")

    report = rnnx.verify(directory, layer)
    assert not report.passed
    assert report.summary()["torchscript"]["passed"]
    assert not report.summary()["onnx"]["passed"]
    assert report.first_failure().startswith("onnx output")


def test_other_weights_in_the_reference_fail(exported_lstm) -> None:
    _, directory = exported_lstm
    other = nn.LSTM(4, 6, num_layers=2, batch_first=True).eval()
    assert not rnnx.verify(directory, other).passed


def test_export_refuses_to_write_a_wrong_model(tmp_path, monkeypatch) -> None:
    import rnnx.pipeline as api

    def inaccurate(*args, **kwargs):
        report = real(*args, **kwargs)
        report.checks[0] = report.checks[0].__class__(
            **{**report.checks[0].__dict__, "passed": False, "max_abs_error": 1.0}
        )
        return report

    real = api.compare
    monkeypatch.setattr(api, "compare", inaccurate)
    # a format asked for by name that fails verification fails the export (of the default
    # formats, one that fails is left out: tests/test_outcomes.py)
    with pytest.raises(VerificationError, match="does not match eager"):
        export(nn.GRU(3, 4).eval(), tmp_path / "gru", ExportOptions(formats=("onnx",)))
    assert not (tmp_path / "gru").exists()
    assert list(tmp_path.iterdir()) == []  # no staging directory left behind either


def test_stateless_export_has_no_state_cases(tmp_path) -> None:
    layer = nn.RNN(3, 5, nonlinearity="relu").eval()
    result = export(layer, tmp_path / "rnn", ExportOptions(stateless=True))
    assert result.report is not None and result.report.passed
    assert {c.initial_state for c in result.report.checks} == {"none", "nan-input"}
    assert result.manifest.signature.state_pairs == ()


def test_every_artifact_is_checked_with_a_nan_in_one_sequence(tmp_path) -> None:
    """onnxruntime's kernels turn a NaN input into finite numbers (LSTM, GRU; ReLU RNN):
    the verifier checks that the exported model gives NaN to that sequence alone, as eager."""
    result = export(nn.RNN(3, 5, nonlinearity="relu").eval(), tmp_path / "rnn")
    nan_checks = [c for c in result.report.checks if c.initial_state == "nan-input"]
    assert {c.artifact for c in nan_checks} == {"onnx", "torchscript"}
    assert all(c.passed for c in nan_checks)
    # an artifact that hides the NaN fails the check, with the reason
    from rnnx.compare import compare
    from rnnx.runtimes.onnxruntime_session import OnnxRuntimeOptions, OnnxRuntimeSession

    manifest = result.manifest
    hiding = OnnxRuntimeSession(tmp_path / "rnn" / "model.onnx", manifest.signature,
                                options=OnnxRuntimeOptions(non_finite="ignore"))  # fmt: skip
    eager = rnnx.load(tmp_path / "rnn", "eager")
    report = compare({"onnx": hiding}, eager, VerifyOptions(sizes=((1, 1),), stream_chunks=()))
    failed = [c for c in report.checks if not c.passed]
    assert failed and all(c.initial_state == "nan-input" for c in failed)
    assert "does not give NaN to it alone" in failed[0].error


def test_compare_uses_both_tolerances() -> None:
    expected = np.array([1000.0, 0.0], dtype=np.float32)
    options = VerifyOptions(atol=1e-5, rtol=1e-4).tolerance("fp32")
    within_rtol = np.array([1000.05, 0.0], dtype=np.float32)
    assert _compare(within_rtol, expected, options, artifact="a", batch=1, time=1,
                    initial_state="zero", output="y").passed  # fmt: skip
    beyond_atol = np.array([1000.0, 1e-3], dtype=np.float32)
    check = _compare(beyond_atol, expected, options, artifact="a", batch=1, time=1,
                     initial_state="zero", output="y")  # fmt: skip
    assert not check.passed and check.max_abs_error == pytest.approx(1e-3)
    nan = np.array([np.nan, 0.0], dtype=np.float32)
    assert not _compare(nan, expected, options, artifact="a", batch=1, time=1,
                        initial_state="zero", output="y").passed  # fmt: skip


def test_in_memory_layer_export_carries_its_reference(tmp_path) -> None:
    layer = nn.GRU(3, 4, num_layers=2).eval()
    export(layer, tmp_path / "gru", ExportOptions(verify=False))
    assert (tmp_path / "gru" / "reference.safetensors").is_file()
    assert rnnx.verify(tmp_path / "gru").passed  # rebuilt from spec + weights, no model given
    feeds = {"input": np.ones((6, 2, 3), np.float32)}
    eager = rnnx.load(tmp_path / "gru", "eager").run(feeds)["output"]
    with torch.no_grad():
        expected = layer(torch.ones(6, 2, 3))[0].numpy()
    np.testing.assert_allclose(eager, expected, atol=1e-6)


def test_verify_in_memory_whole_model_needs_the_model(tmp_path) -> None:
    export(_Tagger().eval(), tmp_path / "tagger", ExportOptions(verify=False),
           example_inputs=(torch.randn(2, 5, 3),))  # fmt: skip
    with pytest.raises(RnnxError, match="in-memory .*_Tagger.*pass the model"):
        rnnx.verify(tmp_path / "tagger")


class _Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


def test_verify_missing_directory_and_manifest(tmp_path) -> None:
    with pytest.raises(RnnxError, match="not found"):
        rnnx.verify(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RnnxError, match="not an rnnx export directory"):
        rnnx.verify(tmp_path / "empty")


def test_load_runs_each_runtime_and_export_keeps_training_mode(tmp_path) -> None:
    layer = nn.GRU(3, 4, num_layers=2, dropout=0.5)  # left in training mode on purpose
    export(layer, tmp_path / "gru")
    assert layer.training
    feeds = {"input": np.ones((6, 2, 3), np.float32), "h0": np.zeros((2, 2, 4), np.float32)}
    results = [
        rnnx.load(tmp_path / "gru", runtime).run(feeds)
        for runtime in ("onnxruntime", "torchscript")
    ]
    np.testing.assert_allclose(results[0]["output"], results[1]["output"], atol=1e-5)
    with pytest.raises(RnnxError, match="unknown runtime"):
        rnnx.load(tmp_path / "gru", "tensorrt")
