"""The onnxruntime-backend flavour (implicit state). Triton's ORT backend is not in the
nvidia-pytriton wheel, so the repository is checked with Triton's own config protobuf and the
rewritten graph runs in onnxruntime under a simulation of the sequence batcher."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from rnnx.pipeline import ExportOptions, export
from rnnx.serving.config import TritonOptions, parse_config
from rnnx.serving.triton import write_repository

pytest.importorskip("tritonclient.grpc.model_config_pb2")

LAYERS = {  # the states are [layers*dirs, B, H] in rnnx: batch-major for Triton
    "lstm_time_major": lambda: nn.LSTM(5, 8, num_layers=2),
    "gru_batch_first": lambda: nn.GRU(5, 7, num_layers=3, batch_first=True),
}


@pytest.fixture(scope="module", params=list(LAYERS))
def repository(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    torch.manual_seed(0)
    module = LAYERS[request.param]().eval()
    export(module, root / "export", ExportOptions(verify=False))
    options = TritonOptions(flavour="onnxruntime", model_name="m", max_batch=5)
    model_dir = write_repository(root / "export", root / "repo", options)
    return module, model_dir


def test_config_parses_with_tritons_protobuf_and_matches_the_graph(repository) -> None:
    _, model_dir = repository
    config = parse_config((model_dir / "config.pbtxt").read_text())
    assert config.backend == "onnxruntime" and config.max_batch_size == 5
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"))
    graph_inputs = {i.name: i.shape for i in session.get_inputs()}
    graph_outputs = {o.name: o.shape for o in session.get_outputs()}
    states = config.sequence_batching.state
    controls = [c.name for c in config.sequence_batching.control_input]
    assert set(graph_inputs) == {i.name for i in config.input} | {s.input_name for s in states} | {
        *controls
    }
    assert set(graph_outputs) == {o.name for o in config.output} | {s.output_name for s in states}
    for state in states:
        # batch-major in the graph; the config's dims leave out the batch, as for any tensor
        assert graph_inputs[state.input_name][1:] == list(state.dims)
        assert graph_outputs[state.output_name][1:] == list(state.dims)
        assert state.initial_state[0].zero_data and list(state.initial_state[0].dims) == list(
            state.dims
        )
    # server#8586: Triton pairs states by sorted position; the names must sort alike
    by_input = sorted(states, key=lambda s: s.input_name)
    by_output = sorted(states, key=lambda s: s.output_name)
    assert [s.input_name for s in by_input] == [s.input_name for s in by_output]


def test_a_simulated_sequence_batcher_equals_eager_per_sequence(repository) -> None:
    """Sequences start at random times and share batches in random slots; Triton keeps their
    states (implicit state). A START row gets whatever the slot held (NaN, or a finished
    sequence's state for a reused correlation id): the graph's reset must ignore it."""
    module, model_dir = repository
    config = parse_config((model_dir / "config.pbtxt").read_text())
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"))
    input_name = config.input[0].name
    output_name = config.output[0].name
    states = [(s.input_name, s.output_name, list(s.dims)) for s in config.sequence_batching.state]
    rng = np.random.default_rng(0)
    # 14 sequences; ids 0 and 1 come back as new sequences (reused correlation ids)
    plans = [(i % 12, int(rng.integers(0, 6)), list(rng.choice([2, 3], rng.integers(2, 6))))
             for i in range(14)]  # fmt: skip
    plans.sort(key=lambda p: p[1])
    chunks = [[rng.standard_normal((n, 5), dtype=np.float32) for n in lengths]
              for _, _, lengths in plans]  # fmt: skip
    stored: dict[int, list[np.ndarray]] = {}  # Triton's state per correlation id
    done = [0] * len(plans)
    outputs: list[list[np.ndarray]] = [[] for _ in plans]
    step = 0
    while any(d < len(c) for d, c in zip(done, chunks)):
        live_ids: set[int] = set()
        ready = []
        for index, (corrid, begin, _) in enumerate(plans):
            under_way = begin <= step and done[index] < len(chunks[index])
            # one sequence per correlation id at a time; a reused id waits its turn
            earlier_done = all(
                done[j] == len(chunks[j]) for j in range(index) if plans[j][0] == corrid
            )
            if under_way and corrid not in live_ids and earlier_done:
                ready.append(index)
                live_ids.add(corrid)
        length = int(rng.choice([2, 3]))
        batch = [i for i in ready if chunks[i][done[i]].shape[0] == length][:5]
        step += 1
        if not batch:
            continue
        rng.shuffle(batch)
        starts = [done[i] == 0 for i in batch]
        feeds = {
            input_name: np.stack([chunks[i][done[i]] for i in batch]),
            "START": np.array([[int(s)] for s in starts], np.int32),
        }
        for n, (state_in, _, dims) in enumerate(states):
            rows = []
            for i, start in zip(batch, starts):
                garbage = stored.get(plans[i][0], [np.full(dims, np.nan, np.float32)] * len(states))
                rows.append(garbage[n] if start else stored[plans[i][0]][n])
            feeds[state_in] = np.stack(rows)
        results = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
        for row, i in enumerate(batch):
            outputs[i].append(results[output_name][row])
            stored[plans[i][0]] = [results[state_out][row] for _, state_out, _ in states]
            done[i] += 1
    for i, pieces in enumerate(outputs):
        whole = np.concatenate(chunks[i])
        np.testing.assert_allclose(np.concatenate(pieces), eager(module, whole), atol=1e-5,
                                   rtol=1e-5)  # fmt: skip


def eager(module: nn.Module, sequence: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(sequence)
    with torch.no_grad():
        if module.batch_first:
            return module(x[None])[0][0].numpy()
        return module(x[:, None])[0][:, 0].numpy()
