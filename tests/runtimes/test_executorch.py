"""The pte format (ExecuTorch, fixed chunks) and the executorch runtime: verified like every
format (whole sequences of any length as chunks plus single steps, streams, NaN), and lengths
a whole-sequence program cannot take refused with one line. Lowering an unrolled chunk takes
~20 s a model here, so two small models stand for the table."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from torch import nn

import rnnx
from rnnx.cli import main
from rnnx.pipeline import ExportOptions, export

pytest.importorskip("executorch", reason="executorch is part of the test set-up")

MODELS = {  # name -> (layer, chunk)
    "gru-2": (lambda: nn.GRU(3, 5, num_layers=2), 4),  # streams: forward (4 steps) + step
    "lstm-bidirectional": (lambda: nn.LSTM(3, 4, bidirectional=True, batch_first=True), 6),
    "lstm-proj-batch-first": (lambda: nn.LSTM(3, 6, proj_size=2, batch_first=True), 5),
    "rnn-relu-3": (lambda: nn.RNN(3, 5, num_layers=3, nonlinearity="relu"), 3),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """Each exported in onnx and pte, verified by the export itself."""
    root = tmp_path_factory.mktemp("pte")
    result = {}
    for name, (make, chunk) in MODELS.items():
        sizes = rnnx.VerifyOptions(sizes=((1, 6), (3, 13)))
        options = ExportOptions(formats=("onnx", "pte"), chunk=chunk, verify_options=sizes)
        result[name] = export(make().eval(), root / name, options)
    return result


def test_a_streaming_model_runs_any_length_and_streams(exported) -> None:
    result = exported["gru-2"]
    assert result.manifest.notes["pte"]["methods"] == {"forward": 4, "step": 1}
    summary = result.report.summary()
    assert summary["pte"]["passed"] and summary["pte streamed"]["passed"]
    # the verifier's default sizes (time 1, 7, 100, 23) through the CLI, by runtime name
    outcome = CliRunner().invoke(main, ["verify", str(result.output_dir), "--runtime",
                                        "executorch"])  # fmt: skip
    assert outcome.exit_code == 0 and "PASS executorch:pte" in outcome.output, outcome.output
    session = rnnx.load(result.output_dir, "executorch")
    x = np.random.default_rng(0).standard_normal((11, 2, 3)).astype(np.float32)
    whole = rnnx.load(result.output_dir, "onnxruntime").run({"input": x})
    stream = session.stream(batch=2)
    first = stream.step(x[:5])["output"]
    stream.save(result.output_dir / "state.npz")
    rest = stream.step(x[5:])["output"]
    np.testing.assert_allclose(np.concatenate([first, rest]), whole["output"], atol=1e-5)
    stream.restore(result.output_dir / "state.npz")
    np.testing.assert_allclose(stream.step(x[5:])["output"], rest, atol=0)
    assert session.providers == ["executorch:xnnpack"]


@pytest.mark.parametrize("name", ["lstm-proj-batch-first", "rnn-relu-3"])
def test_other_layer_kinds_and_layouts(exported, name) -> None:
    """Representative rows of the conformance table (every row would take ~20 s each)."""
    result = exported[name]
    assert result.report.summary()["pte streamed"]["passed"]
    report = rnnx.verify(result.output_dir, runtime="executorch")
    assert report.passed, report.first_failure()


def test_a_model_that_needs_whole_sequences_has_no_pte(exported) -> None:
    """Fixed chunks are exact only when the states carry the sequence: a bidirectional layer is
    written in its other formats, the pte skipped with the reason."""
    result = exported["lstm-bidirectional"]
    assert "pte" not in result.manifest.artifacts
    assert "needs a model that streams" in result.manifest.notes["pte"]["skipped"]
    outcome = CliRunner().invoke(main, ["verify", str(result.output_dir), "--runtime",
                                        "executorch"])  # fmt: skip
    assert (
        outcome.exit_code == 1 and "has no artifact the executorch runtime reads" in outcome.output
    )
