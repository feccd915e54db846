"""Interleaved timing: every round calls each runtime once, so drift hits them all alike."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rnnx.runtimes.base import Session


@dataclasses.dataclass
class BenchRow:
    runtime: str
    providers: str
    batch: int | None  # None: the model fixes this axis (core/signature.py: Signature.labels)
    time: int | None
    threads: int
    chunk: int | None  # streaming chunk size; None: whole sequence per call
    p50_ms: float
    p90_ms: float
    p99_ms: float
    repeats: int
    sequences_per_s: float | None
    frames_per_s: float | None
    ratio_to_eager: float | None
    floor_ms: float | None
    times_floor: float | None  # p50 / floor (1.0 would be the hardware limit)
    real_time_factor: float | None  # streaming: compute time / audio time

    @classmethod
    def from_latency(
        cls,
        runtime: str,
        providers: str,
        *,
        batch: int | None,
        steps: int | None,
        threads: int,
        chunk: int | None,
        percentiles_ms: tuple[float, float, float],  # p50, p90, p99
        repeats: int,
        eager_p50_ms: float | None,
        floor_ms: float | None,
        frame_rate: float,
    ) -> BenchRow:
        """The one place a row's derived columns are computed, for Python and C++ runtimes."""
        p50, p90, p99 = percentiles_ms
        frames = chunk or steps
        per_s = 1e3 / p50
        # The floor is fp32 arithmetic over a whole sequence: it bounds no stream step, and no
        # reduced-precision model.
        reduced = "int8" in runtime or "@" in runtime  # onnxruntime:onnx-int8, openvino@bf16
        floor = floor_ms if not chunk and not reduced else None
        return cls(
            runtime=runtime, providers=providers, batch=batch, time=steps, threads=threads,
            chunk=chunk, p50_ms=p50, p90_ms=p90, p99_ms=p99, repeats=repeats,
            sequences_per_s=batch * per_s if batch else None,
            frames_per_s=batch * frames * per_s if batch and frames else None,
            ratio_to_eager=p50 / eager_p50_ms if eager_p50_ms else None,
            floor_ms=floor, times_floor=p50 / floor if floor else None,
            real_time_factor=(p50 / 1e3) / (chunk / frame_rate) if chunk else None,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def stream_calls(session: Session, feeds: dict, batch: int, chunks: Sequence[int]) -> dict:
    """One timed call = one chunk through a stream (state carried, as in serving)."""
    signature = session.signature
    calls = {}
    for chunk in chunks:
        stream = session.stream(batch)
        piece = {}
        for tensor in signature.data_inputs:
            axis = tensor.dims.index("time")
            piece[tensor.name] = np.ascontiguousarray(
                np.take(feeds[tensor.name], range(chunk), axis)
            )
        calls[chunk] = lambda stream=stream, piece=piece: stream.step(piece)
    return calls


def interleaved(
    calls: Mapping[str, Mapping[int | None, Callable[[], Any]]],
    *,
    repeats: int,
    warmup: int,
    min_seconds: float,
    inner: Mapping[str, tuple[str, Callable[[], float]]] = {},
) -> dict[int | None, dict[str, tuple[tuple[float, float, float], int]]]:
    """Per chunk (None: whole sequences), per runtime: (p50, p90, p99) in ms and the count.

    `inner`: runtime -> (series, the milliseconds its last call took inside the runtime, as it
    measured them: a JavaScript host's, without the transport), a series of its own."""
    results: dict[int | None, dict[str, tuple[tuple[float, float, float], int]]] = {}
    if not calls:  # only C++ runners were asked for: they time themselves
        return results
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for chunk in next(iter(calls.values())):
        samples: dict[str, list[float]] = {r: [] for r in calls}
        samples.update({series: [] for series, _ in inner.values()})
        for _ in range(warmup):
            for r in calls:
                calls[r][chunk]()
        started = time.perf_counter()
        rounds = 0
        while rounds < repeats or time.perf_counter() - started < min_seconds * len(calls):
            for r in calls:  # interleaved: every round times each runtime once
                t0 = time.perf_counter()
                calls[r][chunk]()
                samples[r].append(time.perf_counter() - t0)
                if r in inner:
                    samples[inner[r][0]].append(inner[r][1]() / 1e3)
            rounds += 1
        results[chunk] = {
            r: (tuple(float(np.percentile(np.array(v) * 1e3, q)) for q in (50, 90, 99)), len(v))
            for r, v in samples.items()
        }  # type: ignore[misc]
    return results
