"""The pt2 format (torch.export + AOTInductor) and the aoti runtime, end to end.

Representative rows (tests/conftest.py PT2_MODELS, compiled once per session); the full table
of bare-layer configurations and the zoo is benchmarks/pt2_conformance.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import rnnx
from rnnx.benchmark import BenchOptions, bench
from rnnx.cli import main
from rnnx.core.errors import ExportError, UnsupportedModelError, UntrustedCodeError
from rnnx.core.metadata import parse_metadata
from rnnx.core.signature import random_inputs
from rnnx.exporter.checkpoint import LoadOptions
from rnnx.exporter.plan import EXAMPLE_SIZES, plan_export
from rnnx.exporter.pt2_export import export_program, read_metadata, recurrent_aten_ops_kept
from rnnx.models.zoo import ZOO
from rnnx.pipeline import ExportOptions, export
from tests.conftest import PT2_MODELS

ATOL, RTOL = 1e-5, 1e-4
# none is the export example's (batch 2, time 5)
SHAPES = [(1, 1), (3, 11), (1, 60)]
assert (EXAMPLE_SIZES["batch"], EXAMPLE_SIZES["time"]) not in SHAPES
# A pt2 package is a shared library: opening one runs its code, so only trust opens it.
TRUSTED = LoadOptions(trust_checkpoint=True)


@pytest.mark.parametrize("name", PT2_MODELS)
def test_pt2_package_matches_eager_at_shapes_other_than_the_example(name, pt2_exports) -> None:
    module, directory = pt2_exports[name]
    compiled = rnnx.load(directory, "aoti", trust=TRUSTED)
    eager = rnnx.load(directory, "eager", reference=module)
    for batch, time in SHAPES:
        feeds = random_inputs(compiled.signature, {"batch": batch, "time": time}, seed=time)
        actual, expected = compiled.run(feeds), eager.run(feeds)
        assert actual.keys() == expected.keys()
        for key, value in expected.items():
            np.testing.assert_allclose(actual[key], value, atol=ATOL, rtol=RTOL, err_msg=key)


def test_pt2_carries_the_rnnx_metadata_and_reports_its_compile_time(pt2_exports) -> None:
    _, directory = pt2_exports["lstm_proj"]
    manifest = rnnx.load(directory, "aoti", trust=TRUSTED)
    metadata = parse_metadata(read_metadata(directory / "model.pt2"), "model.pt2")
    recorded = json.loads((directory / "rnnx.json").read_text())
    assert metadata.signature == manifest.signature
    assert metadata.spec is not None and metadata.spec.proj_size == 3
    assert recorded["artifacts"] == {"pt2": "model.pt2"}
    assert recorded["notes"]["pt2"]["compile_s"] > 0


def test_aoti_stream_saves_and_restores_its_state(pt2_exports) -> None:
    module, directory = pt2_exports["lstm_proj"]
    session = rnnx.load(directory, "aoti", trust=TRUSTED)
    x = np.random.default_rng(0).standard_normal((9, 2, 5), dtype=np.float32)
    whole = session.run({"input": x})
    stream = session.stream(batch=2)
    first = [stream.step(x[t : t + 1])["output"] for t in range(4)]
    saved = stream.state
    rest = [stream.step(x[t : t + 1])["output"] for t in range(4, 9)]
    np.testing.assert_allclose(np.concatenate(first + rest), whole["output"], atol=ATOL, rtol=RTOL)
    stream.set_state(saved)
    again = [stream.step(x[t : t + 1])["output"] for t in range(4, 9)]
    np.testing.assert_allclose(np.concatenate(again), np.concatenate(rest), atol=0, rtol=0)
    stream.reset()
    np.testing.assert_allclose(stream.step(x[:1])["output"], first[0], atol=0, rtol=0)


def test_verify_and_bench_reach_the_aoti_runtime_through_the_registry(pt2_exports) -> None:
    module, directory = pt2_exports["seq2seq_step_lstm"]
    report = rnnx.verify(directory, module, trust=TRUSTED)
    assert report.passed and {c.artifact for c in report.checks} >= {"pt2"}
    options = BenchOptions(runtimes=("aoti",), batches=(1,), times=(3,), repeats=2, trust=TRUSTED)
    rows = bench(directory, options, reference=module)
    assert [r.runtime for r in rows] == ["aoti"] and rows[0].p50_ms > 0


def test_a_package_is_opened_only_with_trust(pt2_exports) -> None:
    module, directory = pt2_exports["lstm_proj"]  # a bare layer: the CLI rebuilds it
    with pytest.raises(UntrustedCodeError, match="--trust-checkpoint"):
        rnnx.load(directory, "aoti")
    with pytest.raises(UntrustedCodeError, match="loads a compiled library"):
        rnnx.verify(directory, module)
    refused = CliRunner().invoke(main, ["verify", str(directory)])
    assert refused.exit_code == 1 and "--trust-checkpoint" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    # every available runtime: the package is left out, with the reason, not opened
    with pytest.warns(Warning, match="aoti left out"):
        rows = bench(directory, BenchOptions(batches=(1,), times=(3,), repeats=2),
                     reference=module)  # fmt: skip
    assert "aoti" not in {r.runtime for r in rows}
    trusted = CliRunner().invoke(main, ["verify", str(directory), "--trust-checkpoint"])
    assert trusted.exit_code == 0, trusted.output


def test_pt2_is_asked_for_by_name_not_written_by_all(tmp_path) -> None:
    checkpoint = tmp_path / "gru.pt"
    torch.save(nn.GRU(3, 4).state_dict(), checkpoint)
    result = CliRunner().invoke(main, ["export", str(checkpoint), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "out" / "rnnx.json").read_text())["artifacts"]
    assert "pt2" not in written and "onnx" in written


def test_packed_sequences_skip_pt2_with_the_reason(tmp_path) -> None:
    model = ZOO["packed_prosody_predictor"]().eval()
    with pytest.warns(UserWarning, match=r"pt2: torch.export cannot capture packed sequences"):
        result = export(model, tmp_path / "out", ExportOptions(formats=("onnx", "pt2")))
    assert list(result.manifest.artifacts) == ["onnx"]
    assert "packed sequences" in result.manifest.notes["pt2"]["skipped"]
    with pytest.raises(UnsupportedModelError, match=r"^no format could be written \(pt2: torch"):
        export(model, tmp_path / "only", ExportOptions(formats=("pt2",)))
    assert not (tmp_path / "only").exists()


def test_torchscript_without_jit_trace_names_the_pt2_route(tmp_path, monkeypatch) -> None:
    monkeypatch.delattr(torch.jit, "trace")
    with pytest.raises(ExportError, match=r"^torch.jit.trace is not available.*--format pt2"):
        export(nn.GRU(3, 4).eval(), tmp_path / "out", ExportOptions(formats=("torchscript",)))
    assert not (tmp_path / "out").exists()


class _ConvFrontEnd(nn.Module):
    """rnnoise's shape: a valid convolution over time, then a batch_first GRU and a head on the
    concatenation; its view after the permute makes torch.export ask whether time - 2 is 1."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(5, 8, kernel_size=3)
        self.gru = nn.GRU(8, 8, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        front = torch.tanh(self.conv(features.permute(0, 2, 1))).permute(0, 2, 1)
        output, _ = self.gru(front)
        return self.head(torch.cat([front, output], dim=-1))


def test_conv_front_end_keeps_time_dynamic_and_the_gru_whole() -> None:
    model = _ConvFrontEnd().eval()
    plan = plan_export(model, (torch.randn(2, 10, 5),))
    with recurrent_aten_ops_kept():
        program = export_program(plan.module, plan.example, plan.inputs, plan.axes)
    targets = [n.target for n in program.graph.nodes if n.op == "call_function"]
    assert targets.count(torch.ops.aten.gru.input) == 1
    time = program.graph_signature.user_inputs[0]
    shape = next(n for n in program.graph.nodes if n.name == time).meta["val"].shape
    assert all(isinstance(size, torch.SymInt) for size in shape[:2]) and shape[2] == 5
