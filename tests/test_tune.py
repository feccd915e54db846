"""`rnnx tune` and rnnx.load(dir, "auto"): the fastest verified runtime per shape."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from torch import nn

import rnnx
from rnnx.cli import main
from rnnx.compare import VerifyOptions
from rnnx.core.errors import RnnxError
from rnnx.pipeline import ExportOptions, export
from rnnx.tune import TuneOptions, tune


@pytest.fixture
def exported(tmp_path):
    layer = nn.LSTM(6, 8).eval()
    export(layer, tmp_path / "lstm", ExportOptions(quantize="int8"))
    return layer, tmp_path / "lstm"


def test_tune_records_the_fastest_verified_target_per_shape(exported) -> None:
    layer, directory = exported
    result = tune(directory, TuneOptions(batches=(1, 4), times=(20,), repeats=3))
    assert [(c["batch"], c["time"]) for c in result.choices] == [(1, 20), (4, 20)]
    measured = {r.runtime for r in result.rows}
    assert {"eager", "onnxruntime", "torchscript"} <= measured
    for choice in result.choices:
        rows = [r for r in result.rows if r.batch == choice["batch"] and r.runtime != "eager"]
        assert choice["p50_ms"] == min(r.p50_ms for r in rows)
    recorded = json.loads((directory / "rnnx.json").read_text())["tuned"]
    assert [r["target"] for r in recorded] == [c["target"] for c in result.choices]
    # "auto" opens the recorded choice, which computes what eager computes
    session = rnnx.load(directory, "auto", batch=4)
    assert session.runtime == result.choices[1]["runtime"]
    x = np.random.default_rng(0).standard_normal((20, 4, 6)).astype(np.float32)
    expected = rnnx.load(directory, "eager").run({"input": x})["output"]
    atol = VerifyOptions().tolerance("int8")[0] if "int8" in result.choices[1]["target"] else 1e-5
    np.testing.assert_allclose(session.run({"input": x})["output"], expected, atol=atol)


def test_a_target_that_fails_verification_is_no_candidate(exported, monkeypatch) -> None:
    _, directory = exported
    import rnnx.tune as tuning

    real = tuning.verify

    def int8_is_wrong(*args, **kwargs):
        report = real(*args, **kwargs)
        if kwargs.get("format") == "onnx-int8":
            report.checks[0] = report.checks[0].__class__(
                **{**report.checks[0].__dict__, "passed": False}
            )
        return report

    monkeypatch.setattr(tuning, "verify", int8_is_wrong)
    result = tune(directory, TuneOptions(repeats=2, times=(10,)))
    assert "onnxruntime:onnx-int8" in result.rejected
    assert all(c["target"] != "onnxruntime:onnx-int8" for c in result.choices)
    assert "onnxruntime:onnx-int8" not in {r.runtime for r in result.rows}


def test_auto_without_tuning_and_the_cli(exported) -> None:
    _, directory = exported
    with pytest.raises(RnnxError, match="no tuning: run `rnnx tune"):
        rnnx.load(directory, "auto")
    result = CliRunner().invoke(main, ["tune", str(directory), "--time", "10", "--repeats", "2"])
    assert result.exit_code == 0, result.output
    assert "recorded in" in result.output and "batch 1, time 10" in result.output
    assert rnnx.load(directory, "auto").run({"input": np.ones((3, 1, 6), np.float32)})


def test_a_tuned_record_may_only_pick_runtime_format_and_precision(exported) -> None:
    _, directory = exported
    tune(directory, TuneOptions(repeats=2, times=(10,)))
    manifest = json.loads((directory / "rnnx.json").read_text())
    manifest["tuned"][0]["options"] = {"optimized_model_path": "/tmp/elsewhere.onnx"}
    (directory / "rnnx.json").write_text(json.dumps(manifest))
    with pytest.raises(RnnxError, match="record's 'options' may only name a format"):
        rnnx.load(directory, "auto")
