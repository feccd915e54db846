"""The pte format (ExecuTorch) and the executorch runtime, both variants: verified like every
format (whole sequences, streams, NaN), and lengths a program cannot take refused with one line.
Fixed-chunk: any length as chunks plus single steps; lowering an unrolled chunk takes ~20 s a
model here, so two small models stand for the table. Dynamic-time: any length up to the
declared maximum in one call; every layer kind × layout is in tests/test_conformance.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import rnnx
from rnnx.cli import main
from rnnx.core.errors import InputError
from rnnx.pipeline import ExportOptions, export

pytest.importorskip("executorch", reason="executorch is part of the test set-up")

MODELS = {  # name -> (layer, export options)
    "gru-2": (lambda: nn.GRU(3, 5, num_layers=2), {"chunk": 4}),  # forward (4 steps) + step
    "lstm-proj-batch-first": (lambda: nn.LSTM(3, 6, proj_size=2, batch_first=True), {"chunk": 5}),
    "rnn-relu-3": (lambda: nn.RNN(3, 5, num_layers=3, nonlinearity="relu"), {"chunk": 3}),
    # needs whole sequences: dynamic-time, up to the default maximum
    "lstm-bidirectional": (lambda: nn.LSTM(3, 4, bidirectional=True, batch_first=True), {}),
    "gru-stateless": (lambda: nn.GRU(3, 4), {"stateless": True}),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """Each exported in onnx and pte, verified by the export itself."""
    root = tmp_path_factory.mktemp("pte")
    result = {}
    for name, (make, options) in MODELS.items():
        sizes = rnnx.VerifyOptions(sizes=((1, 6), (3, 13)))
        both = ExportOptions(formats=("onnx", "pte"), verify_options=sizes, **options)
        result[name] = export(make().eval(), root / name, both)
    return result


def test_a_streaming_model_runs_any_length_and_streams(exported) -> None:
    result = exported["gru-2"]
    notes = result.manifest.notes["pte"]
    assert notes["variant"] == "fixed-chunk" and notes["methods"] == {"forward": 4, "step": 1}
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


@pytest.mark.parametrize("name", ["lstm-bidirectional", "gru-stateless"])
def test_a_model_that_needs_whole_sequences_gets_dynamic_time(exported, name) -> None:
    """Bidirectional and stateless layers take any length up to the maximum in one call, and
    refuse a longer one with one line naming the maximum and the option that raises it."""
    result = exported[name]
    notes = result.manifest.notes["pte"]
    assert (notes["variant"], notes["max_time"], notes["methods"]) == (
        "dynamic-time",
        1024,
        {"forward": 1024},
    )
    assert result.report.summary()["pte"]["passed"]
    outcome = CliRunner().invoke(main, ["verify", str(result.output_dir), "--runtime",
                                        "executorch"])  # fmt: skip
    assert outcome.exit_code == 0 and "PASS executorch:pte" in outcome.output, outcome.output
    session = rnnx.load(result.output_dir, "executorch")
    eager = rnnx.load(result.output_dir, "eager")  # from the weights inside the export
    batch_first = result.manifest.spec.batch_first
    rng = np.random.default_rng(1)
    for batch, steps in ((1, 1), (2, 9), (1, 300), (1, 1024)):
        x = rng.standard_normal((batch, steps, 3) if batch_first else (steps, batch, 3),
                                dtype=np.float32)  # fmt: skip
        expected = eager.run({"input": x})
        for output, value in session.run({"input": x}).items():
            np.testing.assert_allclose(value, expected[output], atol=1e-6)
    with pytest.raises(InputError) as refused:
        session.run({"input": np.zeros((1, 1025, 3) if batch_first else (1025, 1, 3), np.float32)})
    assert str(refused.value) == (
        "this pte program takes at most 1024 time steps, got 1025: export again with a larger "
        "--max-time"
    )


def test_max_time_through_the_cli(tmp_path) -> None:
    """--max-time gives a model that streams the dynamic-time variant: the verifier checks it
    within its maximum (its 100-step case at 32 steps, without --verify-sizes), it streams in
    chunks up to the maximum, and `rnnx run` refuses a longer sequence with one line, exit 1."""
    checkpoint, out = tmp_path / "gru.pt", tmp_path / "out"
    torch.save(nn.GRU(3, 5, num_layers=2).state_dict(), checkpoint)
    arguments = ["export", str(checkpoint), "-o", str(out), "--format", "onnx,pte",
                 "--max-time", "32"]  # fmt: skip
    exported = CliRunner().invoke(main, arguments)
    assert exported.exit_code == 0 and "PASS pte streamed" in exported.output, exported.output
    report = tmp_path / "report.json"
    verified = CliRunner().invoke(main, ["verify", str(out), "--json", str(report)])
    assert verified.exit_code == 0, verified.output
    checks = json.loads(report.read_text())["checks"]
    times = {fmt: {c["time"] for c in checks if c["artifact"] == fmt} for fmt in ("onnx", "pte")}
    assert max(times["onnx"]) == 100 and max(times["pte"]) == 32, times
    x = np.random.default_rng(2).standard_normal((32, 2, 3), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    for runtime in ("onnxruntime", "executorch"):
        ran = CliRunner().invoke(main, ["run", str(out), "--input", str(tmp_path / "x.npy"),
                                        "--runtime", runtime, "--chunk", "10", "-o",
                                        str(tmp_path / f"{runtime}.npz")])  # fmt: skip
        assert ran.exit_code == 0, ran.output
    with np.load(tmp_path / "onnxruntime.npz") as a, np.load(tmp_path / "executorch.npz") as b:
        for name in a.files:
            np.testing.assert_allclose(b[name], a[name], atol=1e-5)
    np.save(tmp_path / "long.npy", np.zeros((33, 1, 3), np.float32))
    refused = CliRunner().invoke(main, ["run", str(out), "--input", str(tmp_path / "long.npy"),
                                        "--runtime", "executorch", "-o",
                                        str(tmp_path / "long.npz")])  # fmt: skip
    lines = refused.stderr.strip().splitlines()
    assert refused.exit_code == 1 and len(lines) == 1, refused.output
    assert "takes at most 32 time steps, got 33: export again with a larger --max-time" in lines[0]
