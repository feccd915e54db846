"""Every zoo model exports to ONNX and TorchScript and verifies at shapes other than its example."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import rnnx
from rnnx.cli import main
from rnnx.core.errors import RnnxError, VerificationError
from rnnx.models.zoo import BAD_EXAMPLES, ZOO, Seq2SeqStep
from rnnx.pipeline import export


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_exports_and_verifies(name: str, tmp_path) -> None:
    model = ZOO[name]()
    result = export(model, tmp_path / name)
    assert result.report is not None and result.report.passed, result.report.first_failure()
    artifacts = {c.artifact for c in result.report.checks}
    assert {"onnx", "torchscript"} <= artifacts
    # verified at batches and times other than the example's (2, 5); a step model has no time
    signature = result.manifest.signature
    steps = any("time" in t.dims for t in signature.inputs)
    sizes = {(1, 1), (3, 7), (1, 100)} if steps else {(1, None), (3, None), (5, None)}
    assert {(c.batch, c.time) for c in result.report.checks} >= sizes
    assert any("batch" in str(d) for t in signature.outputs for d in t.dims)
    assert result.manifest.model == "module" and result.manifest.spec is None


def test_bad_tutorial_regressor_is_refused_with_the_reason(tmp_path) -> None:
    model = BAD_EXAMPLES["bad_bilstm_regressor"]()
    with pytest.raises(
        VerificationError, match=r"eager fails at batch 1.*Expected hidden\[0\] size"
    ):
        export(model, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_seq2seq_step_model_streams_token_by_token(tmp_path) -> None:
    model = Seq2SeqStep("lstm").eval()
    export(model, tmp_path / "step")
    session = rnnx.load(tmp_path / "step")
    stream = session.stream(batch=3)
    tokens = np.random.default_rng(0).integers(0, 12, (6, 3))
    state = (torch.zeros(2, 3, 16), torch.zeros(2, 3, 16))
    for step in tokens:
        log_probs = stream.step(step.astype(np.int64))["log_probs"]
        with torch.no_grad():
            expected, *state = model(torch.from_numpy(step), *state)
        np.testing.assert_allclose(log_probs, expected.numpy(), atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(stream.state["c0"], state[1].numpy(), atol=1e-5, rtol=1e-4)


class _Tagger(nn.Module):
    """No rnnx_io: I/O inferred from forward's names and the example inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(6, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, features: torch.Tensor, hidden: torch.Tensor):
        output, hidden = self.gru(features, hidden)
        return self.head(output), hidden


def test_inferred_io_for_a_model_without_declarations(tmp_path) -> None:
    model = _Tagger().eval()
    example = (torch.randn(2, 5, 6), torch.zeros(1, 2, 8))
    result = export(model, tmp_path / "tagger", example_inputs=example)
    signature = result.manifest.signature.to_dict()
    assert [t["dims"] for t in signature["inputs"]] == [["batch", "time", 6], [1, "batch", 8]]
    assert [t["name"] for t in signature["outputs"]] == ["output", "hidden_out"]
    assert signature["state_pairs"] == [["hidden_out", "hidden"]] and signature["streamable"]
    assert result.report.passed
    assert any(c.chunk for c in result.report.checks)  # streamed and compared, too


def test_whole_model_needs_example_inputs(tmp_path) -> None:
    with pytest.raises(RnnxError, match="example_inputs"):
        export(_Tagger(), tmp_path / "x")


def test_cli_exports_a_whole_model_class_from_its_weights(tmp_path, monkeypatch) -> None:
    (tmp_path / "my_zoo.py").write_text(textwrap.dedent(
        """
        import torch
        from rnnx.models.zoo import GRUEncoder

        class Encoder(GRUEncoder):
            pass
        """
    ))  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_zoo  # noqa: F401

    checkpoint = tmp_path / "enc.pt"
    torch.save({"model": sys.modules["my_zoo"].Encoder().state_dict()}, checkpoint)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["export", str(checkpoint), "--model", "my_zoo:Encoder", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "rnnx.json").read_text())
    assert manifest["model"] == "module" and manifest["verification"]["passed"]
    refused = CliRunner().invoke(main, ["verify", str(out)])  # the manifest grants no import
    assert refused.exit_code == 1 and "--model my_zoo:Encoder" in refused.stderr
    verify = ["verify", str(out), "--model", "my_zoo:Encoder"]
    assert CliRunner().invoke(main, verify).exit_code == 0


class _NestedOutputs(nn.Module):
    """Returns nn.LSTM's own (output, (h_n, c_n)): nested tuples, flattened in the graph."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 6)

    def forward(self, x, h0, c0):
        return self.lstm(x, (h0, c0))


def test_nested_outputs_verify_and_run_eagerly_after_export(tmp_path) -> None:
    model = _NestedOutputs().eval()
    example = (torch.randn(5, 2, 4), torch.zeros(1, 2, 6), torch.zeros(1, 2, 6))
    export(model, tmp_path / "nested", example_inputs=example)
    assert rnnx.verify(tmp_path / "nested", model).passed
    outputs = rnnx.load(tmp_path / "nested", "eager", reference=model).run(
        [t.numpy() for t in example]
    )
    assert list(outputs) == ["output", "h0_out", "c0_out"]


class _LSTMCellDecoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(6, 8)
        self.out = nn.Linear(8, 4)

    def forward(self, x, h, c):
        h, c = self.cell(x, (h, c))
        return self.out(h), h, c


class _GRUCellStep(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.GRUCell(6, 8)

    def forward(self, x, h):
        h = self.cell(x, h)
        return torch.tanh(h), h


@pytest.mark.parametrize("make, states", [(_LSTMCellDecoder, 2), (_GRUCellStep, 1)])
def test_cell_step_models_export_and_stream(tmp_path, make, states) -> None:
    model = make().eval()
    example = (torch.randn(2, 6), *(torch.zeros(2, 8) for _ in range(states)))
    result = export(model, tmp_path / "cell", example_inputs=example)
    assert result.report.passed
    signature = result.manifest.signature.to_dict()
    assert signature["streamable"] and len(signature["state_pairs"]) == states
    stream = rnnx.load(tmp_path / "cell").stream(batch=3)
    inputs = torch.randn(5, 3, 6)
    carried = [torch.zeros(3, 8) for _ in range(states)]
    for x in inputs:
        got = stream.step(x.numpy())["output"]
        with torch.no_grad():
            want, *carried = model(x, *carried)
        np.testing.assert_allclose(got, want.numpy(), atol=1e-5, rtol=1e-4)
