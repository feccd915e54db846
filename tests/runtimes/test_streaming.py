"""Streams: chunk by chunk equals the whole sequence; state save/restore; many streams, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import rnnx
from rnnx.core.errors import InputError, RnnxError
from rnnx.runtimes import step_together

STREAMABLE = ("keyword_spotter", "gru", "rnn_relu", "lstm_proj")
# onnxruntime-bound: states in onnxruntime-owned buffers through IO binding, the default on
# device providers (CUDA), run here on CPU so CI exercises it
BACKENDS = ("onnxruntime", "onnxruntime-bound", "torchscript", "eager")
TOL = dict(atol=1e-5, rtol=1e-4)


def open_session(exported, name: str, runtime: str):
    module, directory = exported[name]
    if runtime == "onnxruntime-bound":
        return rnnx.load(directory, "onnxruntime", io_binding=True)
    return rnnx.load(directory, runtime, reference=module if runtime == "eager" else None)


def random_sequence(session, batch: int, time: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = {"batch": batch, "time": time}
    return {
        t.name: rng.standard_normal(t.shape_for(sizes), dtype=np.float32)
        for t in session.signature.inputs
    }


def stream_through(stream, sequence: np.ndarray, time_axis: int, chunk: int) -> np.ndarray:
    pieces = [
        stream.step(
            np.take(
                sequence, range(start, min(start + chunk, sequence.shape[time_axis])), time_axis
            )
        )
        for start in range(0, sequence.shape[time_axis], chunk)
    ]
    return np.concatenate([p["output"] for p in pieces], axis=time_axis)


@pytest.mark.parametrize("chunk", [1, 3, 17, 40])
@pytest.mark.parametrize("runtime", BACKENDS)
@pytest.mark.parametrize("name", STREAMABLE)
def test_streaming_equals_the_whole_sequence(exported, name, runtime, chunk) -> None:
    session = open_session(exported, name, runtime)
    feeds = random_sequence(session, batch=2, time=40)
    whole = session.run(feeds)
    time_axis = session.signature.input("input").dims.index("time")
    stream = session.stream(batch=2)
    stream.set_state({k: feeds[k] for k in session.signature.state_inputs})
    streamed = stream_through(stream, feeds["input"], time_axis, chunk)
    np.testing.assert_allclose(streamed, whole["output"], **TOL)
    for output, state in session.signature.state_pairs:
        np.testing.assert_allclose(stream.state[state], whole[output], **TOL)


@pytest.mark.parametrize("runtime", BACKENDS)
def test_save_restore_resumes_exactly(exported, runtime, tmp_path) -> None:
    session = open_session(exported, "keyword_spotter", runtime)
    sequence = random_sequence(session, batch=1, time=30)["input"]
    uninterrupted = session.stream()
    expected = stream_through(uninterrupted, sequence, 1, 5)

    first = session.stream()
    head = stream_through(first, sequence[:, :10], 1, 5)
    first.save(tmp_path / "state.npz")
    resumed = session.stream()
    resumed.restore(tmp_path / "state.npz")
    tail = stream_through(resumed, sequence[:, 10:], 1, 5)
    np.testing.assert_array_equal(np.concatenate([head, tail], axis=1), expected)

    resumed.reset()
    assert all(not v.any() for v in resumed.state.values())
    np.testing.assert_array_equal(stream_through(resumed, sequence, 1, 5), expected)


def test_streams_stack_into_one_batched_call(exported) -> None:
    session = open_session(exported, "gru", "onnxruntime")
    rng = np.random.default_rng(1)
    streams = [session.stream(batch=b) for b in (1, 2, 1)]
    alone = [session.stream(batch=b) for b in (1, 2, 1)]
    for _ in range(4):
        chunks = [rng.standard_normal((3, s.batch, 5), dtype=np.float32) for s in streams]
        together = step_together(streams, chunks)
        for stream, chunk, result in zip(alone, chunks, together):
            np.testing.assert_allclose(result["output"], stream.step(chunk)["output"], **TOL)
    for a, b in zip(streams, alone):
        np.testing.assert_allclose(a.state["h0"], b.state["h0"], **TOL)
    with pytest.raises(InputError, match="2 streams and 1 chunks"):
        step_together(streams[:2], chunks[:1])


@pytest.mark.parametrize("runtime", ["onnxruntime", "onnxruntime-bound", "torchscript"])
def test_eight_threads_share_one_session(exported, runtime) -> None:
    session = open_session(exported, "keyword_spotter", runtime)
    rng = np.random.default_rng(2)
    chunks = [
        [rng.standard_normal((1, 2, 40), dtype=np.float32) for _ in range(50)] for _ in range(8)
    ]

    def run_stream(index: int) -> list[np.ndarray]:
        stream = session.stream()
        return [stream.step(chunk)["output"] for chunk in chunks[index]]

    sequential = [run_stream(i) for i in range(8)]
    threaded: list = [None] * 8

    def work(i: int) -> None:
        threaded[i] = run_stream(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for expected, actual in zip(sequential, threaded):
        assert len(actual) == 50
        for e, a in zip(expected, actual):
            np.testing.assert_array_equal(a, e)


def test_streams_refuse_what_cannot_stream(exported, tmp_path) -> None:
    with pytest.raises(
        RnnxError, match="cannot stream: it was exported as needing whole sequences"
    ):
        open_session(exported, "lstm_bidirectional", "onnxruntime").stream()
    session = open_session(exported, "keyword_spotter", "onnxruntime")
    stream = session.stream(batch=2)
    with pytest.raises(InputError, match="batch size 1 but the stream has batch size 2"):
        stream.step(np.zeros((1, 4, 40), np.float32))
    with pytest.raises(InputError, match="size 41 on axis 2"):
        stream.step(np.zeros((2, 4, 41), np.float32))
    with pytest.raises(InputError, match="missing input 'c0'"):
        stream.set_state({"h0": np.zeros((2, 2, 64), np.float32)})
    (tmp_path / "bad.npz").write_text("no")
    with pytest.raises(RnnxError, match="cannot read stream state"):
        stream.restore(tmp_path / "bad.npz")
