"""`rnnx bench` and the benchmark suite, at tiny sizes (no timing assertions: speed is
measured in benchmarks/, not in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from rnnx.benchmark import BenchOptions, bench
from rnnx.benchmark.machine import layer_cost
from rnnx.cli import main
from rnnx.core.spec import LayerSpec

ROOT = Path(__file__).resolve().parents[1]


def test_bench_cli_measures_every_runtime_side_by_side(tmp_path) -> None:
    checkpoint = tmp_path / "lstm.pt"
    torch.save(nn.LSTM(4, 8, 2).state_dict(), checkpoint)
    out = tmp_path / "out"
    assert (
        CliRunner()
        .invoke(main, ["export", str(checkpoint), "-o", str(out), "--quantize", "int8"])
        .exit_code
        == 0
    )
    runtimes = ("eager", "torchscript", "onnxruntime", "onnxruntime:onnx-int8")
    args = [
        "bench",
        str(out),
        *(a for runtime in runtimes for a in ("--runtime", runtime)),
        "--batch",
        "1,3",
        "--time",
        "5",
        "--repeats",
        "3",
        "--json",
        str(tmp_path / "r.json"),
        "--csv",
        str(tmp_path / "r.csv"),
        "--plot",
        str(tmp_path / "r.png"),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "r.json").read_text())
    runtimes = {"eager", "torchscript", "onnxruntime", "onnxruntime:onnx-int8"}
    assert {r["runtime"] for r in rows} == runtimes and len(rows) == 8
    for row in rows:
        assert row["p50_ms"] > 0 and row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        assert row["repeats"] >= 3 and row["providers"]
        assert row["ratio_to_eager"] > 0 and row["sequences_per_s"] > 0
    assert all(r["ratio_to_eager"] == 1.0 for r in rows if r["runtime"] == "eager")
    assert all(r["times_floor"] is not None for r in rows if r["runtime"] == "onnxruntime")
    assert (tmp_path / "r.csv").read_text().startswith("runtime,")
    assert (tmp_path / "r.png").stat().st_size > 1000
    assert "onnxruntime:onnx-int8" in result.output


def test_streaming_mode_reports_real_time_factor(tmp_path) -> None:
    layer = nn.GRU(4, 8).eval()
    from rnnx.pipeline import ExportOptions, export

    export(layer, tmp_path / "gru", ExportOptions(verify=False))
    options = BenchOptions(runtimes=("eager", "onnxruntime"), chunks=(1, 4), times=(8,), repeats=3)
    rows = bench(tmp_path / "gru", options, reference=layer)
    assert {(r.runtime, r.chunk) for r in rows} == {
        (rt, c) for rt in ("eager", "onnxruntime") for c in (1, 4)
    }
    for row in rows:
        assert row.real_time_factor == row.p50_ms / 1e3 / (row.chunk / 100.0)


def test_peers_are_timed_in_the_same_rounds(tmp_path) -> None:
    layer = nn.GRU(4, 8).eval()
    from rnnx.pipeline import ExportOptions, export

    export(layer, tmp_path / "gru", ExportOptions(verify=False))
    calls = []

    def peer(feeds):
        calls.append(feeds["input"].shape)
        with torch.inference_mode():
            return layer(torch.from_numpy(feeds["input"]))

    options = BenchOptions(runtimes=("eager", "onnxruntime"), times=(8,), batches=(2,), repeats=3)
    rows = bench(tmp_path / "gru", options, reference=layer, peers={"peer eager": peer})
    (row,) = [r for r in rows if r.runtime == "peer eager"]
    assert row.providers == "peer" and row.repeats == 3 and row.ratio_to_eager > 0
    assert set(calls) == {(8, 2, 4)}


def test_unknown_provider_and_runtime_are_clear_errors(tmp_path) -> None:
    from rnnx.core.errors import RnnxError
    from rnnx.pipeline import ExportOptions, export

    layer = nn.GRU(4, 8).eval()
    export(layer, tmp_path / "gru", ExportOptions(verify=False))
    with pytest.raises(RnnxError, match="provider 'nonesuch'"):
        bench(tmp_path / "gru", BenchOptions(providers=("nonesuch",), repeats=1), reference=layer)
    with pytest.raises(RnnxError, match="unknown runtime 'tvm'"):
        bench(tmp_path / "gru", BenchOptions(runtimes=("tvm",), repeats=1), reference=layer)
    # asked for explicitly, a runtime the export lacks is an error that says how to get it
    with pytest.raises(RnnxError, match="onnxruntime:onnx-int8 is not available.*--quantize int8"):
        bench(
            tmp_path / "gru",
            BenchOptions(runtimes=("onnxruntime:onnx-int8",), repeats=1),
            reference=layer,
        )
    # by default, the baseline is required: a whole model exported from memory has none
    export(_Tagger().eval(), tmp_path / "tagger", ExportOptions(verify=False),
           example_inputs=(torch.randn(5, 2, 4),))  # fmt: skip
    with pytest.raises(RnnxError, match="eager is not available.*checkpoint"):
        bench(tmp_path / "tagger", BenchOptions(repeats=1))


class _Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


def test_layer_cost_counts_gates_and_projection() -> None:
    spec = LayerSpec(kind="LSTM", input_size=80, hidden_size=256, num_layers=2)
    flops, per_step_bytes = layer_cost(spec, batch=1, steps=100)
    # per step: layer 0: 2*4H*(80+H), layer 1: 2*4H*(H+H)
    assert flops == 100 * (2 * 1024 * (80 + 256) + 2 * 1024 * 512)
    assert per_step_bytes == 4 * 2 * (1024 * 256 + 256 + 256)
    projected = LayerSpec(kind="LSTM", input_size=80, hidden_size=1024, num_layers=1, proj_size=256)
    flops, per_step_bytes = layer_cost(projected, batch=2, steps=1)
    assert flops == 2 * 2 * 4096 * (80 + 256) + 2 * 2 * 256 * 1024
    assert per_step_bytes == 4 * (4096 * 256 + 256 * 1024 + 2 * (1024 + 256))


def test_suite_runs_at_tiny_sizes(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "BENCHMARKS.md").read_text()
    from rnnx.core.machine import this_machine

    # one report per CPU class: the latest run, and its class's own copy
    cpu_class = this_machine().cpu_class
    assert (tmp_path / f"BENCHMARKS-{cpu_class}.md").read_text() == text
    assert f"- CPU class: {cpu_class} " in text
    assert "## Targets" in text and "int8 (dynamic quantization) max abs error" in text
    assert "| onnxruntime | 1 | 1 × 5 |" in text and "Versions: rnnx" in text
    assert "C++ runners: not measured (--no-cpp or --quick)" in text
    # the peers (eager bf16, OpenVINO converting the module itself) run in the same rounds,
    # and rnnx's best verified path is compared with the best of them
    for peer in ("peer eager@bf16", "peer openvino@bf16"):
        assert f"| {peer} | 1 | 1 × 5 |" in text
    assert "## rnnx's best verified path vs the best peer" in text
    assert "| LSTM 2×16 | 1 × 5 |" in text
    assert len(list((tmp_path / "plots").glob("*.png"))) == 2
