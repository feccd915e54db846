"""`rnnx triton`: the repository it writes (config checked with Triton's own protobuf), and the
per-sequence streams of its python-backend model, without a server."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import rnnx
from rnnx.cli import main
from rnnx.core.errors import RnnxError
from rnnx.pipeline import ExportOptions, export
from rnnx.serving.config import parse_config
from rnnx.serving.sequences import Chunk, Sequences

pytest.importorskip("tritonclient.grpc.model_config_pb2")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    torch.manual_seed(0)
    layers = {"gru": nn.GRU(5, 7, num_layers=2, batch_first=True),
              "bidirectional": nn.LSTM(5, 7, bidirectional=True)}  # fmt: skip
    for name, layer in layers.items():
        export(layer.eval(), root / name, ExportOptions(verify=False))
    return root


def test_python_repository_config(exports, tmp_path) -> None:
    repository = tmp_path / "repo"
    options = ["--instances", "3", "--max-batch", "32", "--name", "kws"]
    result = CliRunner().invoke(
        main, ["triton", str(exports / "gru"), "-o", str(repository), *options]
    )
    assert result.exit_code == 0, result.output
    config = parse_config((repository / "kws" / "config.pbtxt").read_text())
    assert (config.name, config.backend, config.max_batch_size) == ("kws", "python", 32)
    assert config.instance_group[0].count == 3
    signature = rnnx.load(exports / "gru").signature
    assert [(t.name, list(t.dims)) for t in config.input] == [("input", [-1, 5])]
    assert [(t.name, list(t.dims)) for t in config.output] == [("output", [-1, 7])]
    assert "h0" in signature.input_names  # states stay inside the server, not in the config
    batching = config.sequence_batching
    assert batching.HasField("oldest")
    kinds = {c.name: c.control[0].kind for c in batching.control_input}
    assert set(kinds) == {"START", "END", "READY", "CORRID"}
    assert (repository / "kws" / "1" / "model.py").is_file()
    assert (repository / "kws" / "1" / "export" / "rnnx.json").is_file()
    again = CliRunner().invoke(main, ["triton", str(exports / "gru"), "-o", str(repository)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_a_model_that_cannot_stream_is_refused_without_output(exports, tmp_path) -> None:
    result = CliRunner().invoke(
        main, ["triton", str(exports / "bidirectional"), "-o", str(tmp_path / "repo")]
    )
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "stream" in result.output
    assert not (tmp_path / "repo").exists() and not list(tmp_path.iterdir())


class CountingSession:
    """A session that counts its calls (to see chunks of many sequences go in one call)."""

    def __init__(self, session) -> None:
        self.inner, self.calls = session, 0
        self.signature = session.signature

    def run(self, feeds):
        self.calls += 1
        return self.inner.run(feeds)

    def stream(self, batch=1):
        return rnnx.runtimes.streaming.Stream(self, batch)

    def _state_from_numpy(self, state):
        return state

    def _state_to_numpy(self, state):
        return state

    def _step(self, feeds, state):
        outputs = self.run({**feeds, **state})
        return outputs, {i: outputs.pop(o) for o, i in self.signature.state_pairs}


def test_sequences_batch_chunks_of_one_call_and_keep_states_apart(exports) -> None:
    session = CountingSession(rnnx.load(exports / "gru"))
    clock = [0.0]
    sequences = Sequences(session, idle_timeout_s=10, clock=lambda: clock[0])
    rng = np.random.default_rng(0)
    whole = {s: rng.standard_normal((1, 6, 5), dtype=np.float32) for s in (1, 2, 3)}
    outputs: dict[int, list] = {s: [] for s in whole}
    for step, (a, b) in enumerate([(0, 2), (2, 6)]):
        chunks = [Chunk(s, step == 0, False, {"input": x[:, a:b]}) for s, x in whole.items()]
        calls = session.calls
        for chunk, result in zip(chunks, sequences.run(chunks)):
            outputs[chunk.sequence].append(result["output"])
        assert session.calls == calls + 1  # three sequences, one call
    reference = rnnx.load(exports / "gru")
    for s, x in whole.items():
        want = reference.run({"input": x})["output"]
        np.testing.assert_allclose(np.concatenate(outputs[s], axis=1), want, atol=1e-6)
    # unknown sequences and wrong chunks fail alone; idle sequences are freed
    bad = Chunk(1, False, False, {"input": np.zeros((1, 2, 4), np.float32)})
    fresh = Chunk(9, False, False, {"input": np.zeros((1, 2, 5), np.float32)})
    good = Chunk(2, False, False, {"input": np.zeros((1, 2, 5), np.float32)})
    results = sequences.run([bad, fresh, good])
    assert isinstance(results[0], RnnxError) and isinstance(results[1], RnnxError)
    assert "START" in str(results[1]) and results[2]["output"].shape == (1, 2, 7)
    clock[0] = 11.0
    sequences.run([Chunk(4, True, True, {"input": np.zeros((1, 1, 5), np.float32)})])
    assert sequences.streams == {}  # 1, 2, 3 idle past the timeout; 4 ended


def test_serve_without_a_tritonserver_binary_is_one_line(exports, monkeypatch) -> None:
    import rnnx.serving.server as server

    monkeypatch.setattr(server, "find_spec", lambda name: None)  # no nvidia-pytriton
    monkeypatch.setenv("PATH", "")  # and no tritonserver on PATH
    result = CliRunner().invoke(main, ["serve", str(exports / "gru")])
    assert result.exit_code == 1
    assert result.output == (
        "rnnx: error: no tritonserver binary found: pip install 'rnnx[serve]' "
        "(the nvidia-pytriton wheel ships tritonserver)\n"
    )


def test_force_replaces_a_repository(exports, tmp_path) -> None:
    repository = tmp_path / "repo"
    for flavour in ("python", "onnxruntime"):
        result = CliRunner().invoke(main, ["triton", str(exports / "gru"), "-o", str(repository),
                                           "--flavour", flavour, "--force"])  # fmt: skip
        assert result.exit_code == 0, result.output
    config = parse_config((repository / "gru" / "config.pbtxt").read_text())
    assert config.backend == "onnxruntime"
    assert sorted(p.name for p in (repository / "gru" / "1").iterdir()) == ["model.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # nothing left aside
