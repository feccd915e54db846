"""The OpenVINO runtime: one registry entry and one module, verified like the others."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from torch import nn

import rnnx
from rnnx.cli import main
from rnnx.core.errors import RnnxError
from rnnx.pipeline import ExportOptions, export

pytest.importorskip("openvino", reason="the openvino package is part of the test set-up")
from rnnx.runtimes.openvino_session import supported_precisions  # noqa: E402

# Every layer kind and precision is verified in tests/test_conformance.py; these are the
# OpenVINO-specific behaviours.
LAYERS = {
    "lstm-2-batch-first": lambda: nn.LSTM(4, 6, num_layers=2, batch_first=True),
    "gru-2": lambda: nn.GRU(4, 5, num_layers=2),
    "lstm-proj": lambda: nn.LSTM(4, 8, proj_size=3),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("openvino")
    return {name: export(make().eval(), root / name, ExportOptions(formats=("onnx",))).output_dir
            for name, make in LAYERS.items()}  # fmt: skip


@pytest.mark.parametrize("precision", ["bf16", "f16"])
def test_a_precision_the_cpu_lacks_is_refused(exported, precision) -> None:
    if precision in supported_precisions():
        pytest.skip(f"this CPU runs {precision}")
    with pytest.raises(RnnxError, match=f"precision '{precision}' is not supported by this CPU"):
        rnnx.load(exported["gru-2"], "openvino", precision=precision)


def test_bf16_is_refused_on_the_avx2_class_with_the_precisions_it_has(exported, monkeypatch):
    """On a CPU without AVX512-BF16 or AMX (here: oneDNN capped to AVX2, as OpenVINO's kernels
    are by ONEDNN_MAX_CPU_ISA), bf16 is refused naming what runs, and f32 still verifies."""
    from rnnx.core.machine import this_machine

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    this_machine.cache_clear()
    try:
        assert "bf16" not in supported_precisions()
        with pytest.raises(RnnxError, match=r"precision 'bf16' is not supported by this CPU in "
                           r"OpenVINO; it supports f32"):  # fmt: skip
            rnnx.load(exported["gru-2"], "openvino", precision="bf16")
        assert rnnx.verify(exported["gru-2"], runtime="openvino").passed
    finally:
        this_machine.cache_clear()


def test_streams_equal_the_whole_sequence(exported) -> None:
    session = rnnx.load(exported["lstm-2-batch-first"], "openvino", threads=1)
    x = np.random.default_rng(0).standard_normal((2, 11, 4)).astype(np.float32)
    whole = session.run({"input": x})["output"]
    stream = session.stream(batch=2)
    pieces = [stream.step(x[:, i : i + 4])["output"] for i in range(0, 11, 4)]
    np.testing.assert_allclose(np.concatenate(pieces, 1), whole, atol=1e-5)
    assert session.providers == ["openvino:CPU:f32"]


def test_an_older_untyped_scan_is_refused_not_run_wrong(exported, tmp_path) -> None:
    """Exports of rnnx before the Scan body was typed: OpenVINO fails on them at inference or
    returns empty outputs, so opening one is a one-line error saying to export again."""
    model = onnx.load(exported["lstm-proj"] / "model.onnx")
    scan = next(node for node in model.graph.node if node.op_type == "Scan")
    for value in scan.attribute[[a.name for a in scan.attribute].index("body")].g.input:
        value.type.tensor_type.elem_type = 0
    old = tmp_path / "old"
    shutil.copytree(exported["lstm-proj"], old)
    onnx.save(model, old / "model.onnx")
    with pytest.raises(RnnxError, match="older rnnx .*untyped.*export it again"):
        rnnx.load(old, "openvino")


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
