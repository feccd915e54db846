"""Stateful streaming over a stateless session: the hidden state carried between chunks.

onnxruntime sessions (and the exported graphs) are stateless: the state goes in as `h0`/`c0`
and comes out as `h_n`/`c_n`. A Stream feeds each chunk with the state the previous chunk
returned, so feeding a sequence chunk by chunk equals one call on the whole sequence (for
models without a reverse direction). Streams are cheap: many share one loaded session, one
thread per stream is safe, and several streams can be stacked into one batched call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from rnnx.core.arrays import read_npz, write_npz
from rnnx.core.errors import InputError, RnnxError
from rnnx.core.signature import Signature, check_names, time_layout, validate, zero_states


class Session(Protocol):
    """What a Stream needs of the session it runs on (base.Session implements it)."""

    signature: Signature

    def run(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]: ...
    def stream(self, batch: int = 1) -> Stream: ...
    def _state_from_numpy(self, state: dict[str, np.ndarray]) -> Any: ...
    def _state_to_numpy(self, state: Any) -> dict[str, np.ndarray]: ...
    def _step(self, feeds: dict[str, np.ndarray], state: Any) -> tuple[dict, Any]: ...


class Stream:
    def __init__(self, session: Session, batch: int = 1) -> None:
        signature = session.signature
        if not signature.state_pairs:
            raise RnnxError(
                "this model has no state inputs (exported --stateless?); it cannot stream"
            )
        if not signature.streamable:
            # Only a reason the model has: the signature shows a lengths input; any other
            # (found when it was exported) is in its manifest.
            lengths = [t.name for t in signature.inputs if t.role == "lengths"]
            why = (
                f"it takes a lengths input ({lengths[0]!r}), which describes whole sequences"
                if lengths
                else "it was exported as needing whole sequences (`rnnx inspect` shows why)"
            )
            raise RnnxError(
                f"this model cannot stream: {why}; run complete sequences with session.run"
            )
        if batch < 1:
            raise InputError(f"stream batch must be at least 1, got {batch}")
        self.session = session
        self.batch = batch
        self._state: Any = None
        self._validated: tuple = ()
        self.reset()

    def reset(self) -> None:
        """Back to zero states, as at the start of a new sequence."""
        self._state = self.session._state_from_numpy(
            zero_states(self.session.signature, self.batch)
        )

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of the current states, by state input name (h0, c0)."""
        return {k: np.array(v) for k, v in self.session._state_to_numpy(self._state).items()}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Resume from saved states (as returned by `state`)."""
        signature = self.session.signature
        check_names(state, signature.state_inputs)
        arrays = {k: np.ascontiguousarray(state[k]) for k in signature.state_inputs}
        specs = [signature.input(name) for name in signature.state_inputs]
        validate(specs, arrays, {"batch": self.batch})
        self._state = self.session._state_from_numpy(arrays)

    def save(self, path: str | os.PathLike) -> None:
        """Write the states to an .npz file (atomically: temporary file, then rename)."""
        try:
            write_npz(path, self.state)
        except RnnxError as error:
            raise RnnxError(f"cannot write stream state: {error}") from error

    def restore(self, path: str | os.PathLike) -> None:
        """Resume from states written by `save` (an .npz)."""
        try:
            state = read_npz(path)
        except RnnxError as error:
            raise RnnxError(f"cannot read stream state '{path}': {error}") from error
        self.set_state(state)

    def step(self, chunk: np.ndarray | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one chunk (any number of time steps); returns the data outputs.

        The final states stay in the stream (on the session's device) for the next chunk;
        read them with `state`.
        """
        feeds = self._feeds(chunk)
        outputs, self._state = self.session._step(feeds, self._state)
        return outputs

    def _feeds(self, chunk: np.ndarray | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        specs = self.session.signature.data_inputs
        if type(chunk) is np.ndarray and len(specs) == 1:
            feeds = {specs[0].name: chunk}  # the usual step, one array: nothing to look up
        else:
            if not isinstance(chunk, Mapping):
                if len(specs) != 1:
                    names = ", ".join(s.name for s in specs)
                    raise InputError(f"this model takes several inputs ({names}): pass a mapping")
                chunk = {specs[0].name: chunk}
            check_names(chunk, [s.name for s in specs])
            feeds = {s.name: np.asarray(chunk[s.name]) for s in specs}
        # Steps of one stream repeat the same shapes: validate each new shape once.
        shapes = tuple((a.shape, a.dtype) for a in feeds.values())
        if shapes != self._validated:
            validate(specs, feeds, {"batch": self.batch}, self.session.signature.axes)
            self._validated = shapes
        return feeds


def step_together(
    streams: Sequence[Stream], chunks: Sequence[np.ndarray | Mapping[str, np.ndarray]]
) -> list[dict[str, np.ndarray]]:
    """Advance several streams of one session in a single batched call.

    Inputs and states are concatenated along their batch axes and the outputs split back, so
    serving N users costs one call instead of N. Chunks must have the same length in time.
    """
    if not streams or len(streams) != len(chunks):
        raise InputError(f"got {len(streams)} streams and {len(chunks)} chunks")
    session = streams[0].session
    if any(s.session is not session for s in streams):
        raise InputError("streams stacked together must share one session")
    signature = session.signature
    feeds_per_stream = [s._feeds(c) for s, c in zip(streams, chunks)]
    states = [s.state for s in streams]
    feeds = {
        t.name: np.concatenate([f[t.name] for f in feeds_per_stream], axis=t.dims.index("batch"))
        for t in signature.data_inputs
    }
    for name in signature.state_inputs:
        axis = signature.input(name).dims.index("batch")
        feeds[name] = np.concatenate([s[name] for s in states], axis=axis)
    outputs = session.run(feeds)
    bounds = np.cumsum([s.batch for s in streams])[:-1]
    results: list[dict[str, np.ndarray]] = [{} for _ in streams]
    for tensor in signature.outputs:
        parts = np.split(outputs[tensor.name], bounds, axis=tensor.dims.index("batch"))
        for result, part in zip(results, parts):
            result[tensor.name] = part
    for stream, result in zip(streams, results):
        stream.set_state({i: result.pop(o) for o, i in signature.state_pairs})
    return results


def run_in_chunks(
    session: Session, feeds: Mapping[str, np.ndarray], chunk: int
) -> dict[str, np.ndarray]:
    """Feed whole-sequence `feeds` (states included) through a new Stream, `chunk` steps at a
    time; returns what one `session.run(feeds)` returns, reassembled from the pieces."""
    signature = session.signature
    pieces, stream = stream_in_chunks(session, feeds, chunk)
    outputs = {name: assemble_chunks(signature.output(name).dims, [p[name] for p in pieces],
                                     stream.batch) for name in pieces[0]}  # fmt: skip
    final = stream.state
    outputs.update({o: final[i] for o, i in signature.state_pairs})
    return {name: outputs[name] for name in signature.output_names}


def stream_in_chunks(
    session: Session, feeds: Mapping[str, np.ndarray], chunk: int
) -> tuple[list[dict[str, np.ndarray]], Stream]:
    """The data outputs of each chunk of `feeds` fed through a new Stream (from the states in
    `feeds`), and the stream. Inputs without a time axis go whole with every chunk."""
    if chunk < 1:
        raise InputError(f"chunk size must be at least 1, got {chunk}")
    signature = session.signature
    data = signature.data_inputs
    timed = [t for t in data if "time" in t.dims]
    if not timed:
        raise InputError(f"input {data[0].name!r} has no time axis to chunk")
    first = timed[0]
    batch = np.shape(feeds[first.name])[first.dims.index("batch")]
    time = np.shape(feeds[first.name])[first.dims.index("time")]
    if time < 1:
        raise InputError(f"input {first.name!r} has an empty time axis")
    stream = session.stream(batch)
    stream.set_state({name: feeds[name] for name in signature.state_inputs})
    pieces = []
    for start in range(0, time, chunk):
        steps = range(start, min(start + chunk, time))
        pieces.append(stream.step({
            t.name: np.take(feeds[t.name], steps, t.dims.index("time")) if t in timed
            else feeds[t.name] for t in data
        }))  # fmt: skip
    return pieces, stream


def assemble_chunks(dims: Sequence[Any], pieces: list[np.ndarray], batch: int) -> np.ndarray:
    """One output of a whole sequence from its chunks: joined along its time axis (a flattened
    (time, batch) axis too, interleaved for (batch, time)); an output without time (a head on
    the last step) is the last chunk's."""
    for axis, dim in enumerate(dims):
        layout = time_layout(dim)
        if layout is None:
            continue
        if layout[0] == "time":
            return np.concatenate(pieces, axis)
        # batch-major: each chunk is (batch * its steps); split batch out, join on time
        split = [p.reshape(*p.shape[:axis], batch, -1, *p.shape[axis + 1 :]) for p in pieces]
        joined = np.concatenate(split, axis + 1)
        return joined.reshape(*joined.shape[:axis], -1, *joined.shape[axis + 2 :])
    return pieces[-1]
