"""The OpenVINO runtime: one registry entry and one module, verified like the others."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from torch import nn

import rnnx
from rnnx.cli import main
from rnnx.core.errors import RnnxError
from rnnx.pipeline import ExportOptions, export

pytest.importorskip("openvino", reason="the openvino package is part of the test set-up")
from rnnx.runtimes.openvino_session import supported_precisions  # noqa: E402

# A conformance table: each layer kind with the layouts that change the graph.
LAYERS = {
    "lstm-2-batch-first": lambda: nn.LSTM(4, 6, num_layers=2, batch_first=True),
    "lstm-bidirectional": lambda: nn.LSTM(4, 6, bidirectional=True),
    "gru-2": lambda: nn.GRU(4, 5, num_layers=2),
    "gru-bidirectional-batch-first": lambda: nn.GRU(4, 5, bidirectional=True, batch_first=True),
    "rnn-tanh": lambda: nn.RNN(3, 5),
    "rnn-relu-3-layers": lambda: nn.RNN(3, 5, num_layers=3, nonlinearity="relu"),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("openvino")
    return {name: export(make().eval(), root / name, ExportOptions(formats=("onnx",))).output_dir
            for name, make in LAYERS.items()}  # fmt: skip


@pytest.mark.parametrize("precision", ["f32", "bf16", "f16"])
@pytest.mark.parametrize("layer", LAYERS)
def test_conformance(exported, layer, precision) -> None:
    if precision not in supported_precisions():
        with pytest.raises(
            RnnxError, match=f"precision '{precision}' is not supported by this CPU"
        ):
            rnnx.load(exported[layer], "openvino", precision=precision)
        return
    report = rnnx.verify(exported[layer], runtime="openvino", precision=precision)
    assert report.passed, report.first_failure()
    label = "openvino:onnx" + (f"[{precision}]" if precision != "f32" else "")
    summary = report.summary()[label]
    limit = 1e-5 if precision == "f32" else 3e-2
    assert summary["cases"] > 0 and summary["max_abs_error"] <= limit


def test_streams_equal_the_whole_sequence(exported) -> None:
    session = rnnx.load(exported["lstm-2-batch-first"], "openvino", threads=1)
    x = np.random.default_rng(0).standard_normal((2, 11, 4)).astype(np.float32)
    whole = session.run({"input": x})["output"]
    stream = session.stream(batch=2)
    pieces = [stream.step(x[:, i : i + 4])["output"] for i in range(0, 11, 4)]
    np.testing.assert_allclose(np.concatenate(pieces, 1), whole, atol=1e-5)
    assert session.providers == ["openvino:CPU:f32"]


def test_projected_lstm_is_refused_not_run_wrong(tmp_path) -> None:
    export(nn.LSTM(4, 8, proj_size=3).eval(), tmp_path / "proj", ExportOptions(formats=("onnx",)))
    with pytest.raises(RnnxError, match="projected LSTM.*OpenVINO runs wrong.*onnxruntime"):
        rnnx.load(tmp_path / "proj", "openvino")


def test_bad_options_are_one_line_errors(exported) -> None:
    with pytest.raises(RnnxError, match="precision 'int4' is not one rnnx knows"):
        rnnx.load(exported["gru-2"], "openvino", precision="int4")
    with pytest.raises(RnnxError, match="runs on cpu here, not 'cuda:0'"):
        rnnx.load(exported["gru-2"], "openvino", provider="cuda:0")


def test_cli_verify_and_bench_know_it(exported) -> None:
    runner = CliRunner()
    directory = str(exported["gru-2"])
    result = runner.invoke(main, ["verify", directory, "--runtime", "openvino"])
    assert result.exit_code == 0 and "openvino:onnx" in result.output, result.output
    result = runner.invoke(main, ["bench", directory, "--runtime", "eager", "--runtime",
                                  "openvino", "--repeats", "3"])  # fmt: skip
    assert result.exit_code == 0 and "openvino:CPU:f32" in result.output, result.output
    result = runner.invoke(main, ["verify", directory, "--precision", "bf16"])
    assert result.exit_code == 1 and "--precision needs --runtime" in result.output
