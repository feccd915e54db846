"""Streams by sequence: what the Triton python-backend model keeps between requests.

Triton's sequence batcher sends each request of a sequence with its correlation id and
START/END flags, and puts requests of several sequences into one `execute` call. Here each
sequence owns one rnnx Stream (its states); the chunks of one call are advanced together with
`step_together` (one batched session call instead of one per sequence). This module knows
nothing of Triton's Python API, so it is tested without a server.

Tensors cross the server batch-first (Triton's batch axis is always the first): a chunk of
one sequence is [1, ...]; `to_model`/`to_server` move that axis to where the rnnx signature
has it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from rnnx.core.errors import RnnxError
from rnnx.core.signature import Signature
from rnnx.runtimes.streaming import Stream, step_together


@dataclasses.dataclass
class Chunk:
    sequence: int  # the correlation id
    start: bool
    end: bool
    feeds: dict[str, np.ndarray]  # data inputs, batch-first: [1, ...]


# The names Triton's sequence batcher sends besides the model's (config.pbtxt control inputs),
# and the implicit-state names of the onnxruntime flavour.
CONTROL_NAMES = ("START", "END", "READY", "CORRID")
STATE_PREFIX = "rnnx_state_"


def check_wire_names(signature: Signature, source: str) -> None:
    """Refuse a model whose input or output name is one the server uses itself: a tensor named
    START would be taken for the sequence-start flag (and every request fail)."""
    for tensor in (*signature.inputs, *signature.outputs):
        if tensor.name in CONTROL_NAMES or tensor.name.startswith(STATE_PREFIX):
            raise RnnxError(
                f"{source}: tensor {tensor.name!r} has a name Triton's sequence batcher uses "
                f"({', '.join(CONTROL_NAMES)}, {STATE_PREFIX}*): rename it (ModelIO names) and "
                "export again"
            )


def check_servable(signature: Signature, source: str) -> None:
    """The models the sequence model serves: streamable, every data tensor with a batch axis."""
    if not signature.state_pairs or not signature.streamable:
        raise RnnxError(
            f"{source}: only models that stream can be served as sequences (states, no reverse "
            "direction, no lengths input)"
        )
    check_wire_names(signature, source)
    stateful = set(signature.state_inputs) | {o for o, _ in signature.state_pairs}
    for tensor in (*signature.inputs, *signature.outputs):
        if tensor.name not in stateful and "batch" not in tensor.dims:
            raise RnnxError(
                f"{source}: tensor {tensor.describe()} has no separate batch axis; the Triton "
                "repository needs one on every input and output"
            )


def to_model(signature: Signature, name: str, array: np.ndarray) -> np.ndarray:
    return np.moveaxis(array, 0, signature.input(name).dims.index("batch"))


def to_server(signature: Signature, name: str, array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(array, signature.output(name).dims.index("batch"), 0))


class Sequences:
    """One Stream per live sequence; `run` answers one execute call's chunks."""

    def __init__(
        self,
        session: Any,
        idle_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.session = session
        self.signature: Signature = session.signature
        self.idle_timeout_s = idle_timeout_s
        self.clock = clock
        self.log = log
        self.streams: dict[int, Stream] = {}
        self.last_seen: dict[int, float] = {}

    def run(self, chunks: list[Chunk]) -> list[dict[str, np.ndarray] | RnnxError]:
        """Each chunk's data outputs (batch-first), or the error for that chunk alone."""
        self.free_idle()
        results: list[dict[str, np.ndarray] | RnnxError] = [RnnxError("not run") for _ in chunks]
        groups: dict[tuple, list[int]] = {}
        for index, chunk in enumerate(chunks):
            stream = self._stream_for(chunk)
            if isinstance(stream, RnnxError):
                results[index] = stream
                continue
            # step_together stacks chunks of one shape; a call may mix lengths in time
            shapes = tuple((k, v.shape, v.dtype.str) for k, v in sorted(chunk.feeds.items()))
            groups.setdefault(shapes, []).append(index)
        for indices in groups.values():
            self._advance([chunks[i] for i in indices], indices, results)
        for chunk in chunks:
            if chunk.end:
                self.free(chunk.sequence, "ended")
            elif chunk.sequence in self.streams:
                self.last_seen[chunk.sequence] = self.clock()
        return results

    def _stream_for(self, chunk: Chunk) -> Stream | RnnxError:
        if chunk.start:
            stream = self.streams.get(chunk.sequence)
            if stream is None:
                stream = self.streams[chunk.sequence] = self.session.stream(1)
            stream.reset()
            self.last_seen[chunk.sequence] = self.clock()
            return stream
        stream = self.streams.get(chunk.sequence)
        if stream is None:
            # Never guess a state: a sequence whose state is gone must start again.
            return RnnxError(
                f"sequence {chunk.sequence} has no state on this server (not started with "
                "START, already ended, idle too long, or the server restarted): start it again"
            )
        return stream

    def _advance(self, group: list[Chunk], indices: list[int], results: list) -> None:
        streams = [self.streams[c.sequence] for c in group]
        feeds = [{k: to_model(self.signature, k, v) for k, v in c.feeds.items()} for c in group]
        try:
            outputs = step_together(streams, feeds)
        except RnnxError:
            # Some chunk is invalid: run them one by one so the error reaches its client only
            # (a failed step leaves that stream's state as it was).
            outputs = []
            for stream, chunk_feeds in zip(streams, feeds):
                try:
                    outputs.append(stream.step(chunk_feeds))
                except RnnxError as error:
                    outputs.append(error)
        for index, output in zip(indices, outputs):
            results[index] = (
                output
                if isinstance(output, RnnxError)
                else {k: to_server(self.signature, k, v) for k, v in output.items()}
            )

    def free(self, sequence: int, why: str) -> None:
        if self.streams.pop(sequence, None) is not None:
            self.last_seen.pop(sequence, None)
            self.log(f"sequence {sequence} freed ({why}); {len(self.streams)} live")

    def free_idle(self) -> None:
        now = self.clock()
        for sequence, seen in list(self.last_seen.items()):
            if now - seen > self.idle_timeout_s:
                self.free(sequence, f"idle for more than {self.idle_timeout_s:g} s")
