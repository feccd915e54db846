"""Load test of `rnnx serve`: many concurrent sequences streaming to a real tritonserver.

    python benchmarks/serve.py            # prints the report (benchmarks/run.py puts it in
                                          # BENCHMARKS.md); --output FILE writes it there
    python benchmarks/serve.py --quick    # 2 and 8 sequences, short

For 8, 64 and 256 concurrent sequences (clients), each streams its chunks over gRPC (one
request in flight per sequence, the next sent when the answer arrives) to the python-backend
repository of `rnnx triton`. Every sequence's concatenated output is checked against eager
PyTorch on its whole sequence (<= 1e-5). Reported: chunks/s, per-chunk latency p50/p99 as the
client sees it, and the batch sizes the server's sequence batcher reached (Triton's statistics).
The same streams run in one process through rnnx.load(...).stream(), one step per chunk and
batched with step_together, give the overhead of serving.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import rnnx
from rnnx.models import keyword_spotter_lstm
from rnnx.pipeline import ExportOptions, export
from rnnx.runtimes import step_together
from rnnx.serving.config import TritonOptions
from rnnx.serving.server import Server
from rnnx.serving.triton import write_repository

CHUNK = 10  # frames per request: 100 ms of audio features at 100 frames/s
FEATURES = 40
TOLERANCE = 1e-5


def batch_counts(client, model: str) -> dict[int, int]:
    """Executions per batch size so far (Triton's model statistics)."""
    stats = client.get_inference_statistics(model).model_stats[0]
    return {b.batch_size: b.compute_infer.count for b in stats.batch_stats}


async def stream_all(url: str, model: str, data: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Every sequence of data [N, time, features] streamed concurrently; (outputs, latencies)."""
    import tritonclient.grpc.aio as grpcclient

    client = grpcclient.InferenceServerClient(url)
    latencies: list[float] = []
    outputs = [[] for _ in range(len(data))]

    async def one(index: int) -> None:
        steps = data.shape[1] // CHUNK
        for step in range(steps):
            chunk = data[index : index + 1, step * CHUNK : (step + 1) * CHUNK]
            feed = grpcclient.InferInput("input", list(chunk.shape), "FP32")
            feed.set_data_from_numpy(chunk)
            begin = time.perf_counter()
            result = await client.infer(
                model, [feed], sequence_id=index + 1, sequence_start=step == 0,
                sequence_end=step == steps - 1,
            )  # fmt: skip
            latencies.append(time.perf_counter() - begin)
            outputs[index].append(result.as_numpy("output"))

    await asyncio.gather(*(one(i) for i in range(len(data))))
    await client.close()
    return np.concatenate([np.concatenate(o, axis=1) for o in outputs]), latencies


def in_process(session, data: np.ndarray, together: bool) -> tuple[np.ndarray, list, float]:
    """The same streams in this process: one Stream per sequence on one session;
    (outputs, latencies, seconds)."""
    started = time.perf_counter()
    streams = [session.stream() for _ in range(len(data))]
    outputs: list[list[np.ndarray]] = [[] for _ in streams]
    latencies = []
    for step in range(data.shape[1] // CHUNK):
        chunks = [data[i : i + 1, step * CHUNK : (step + 1) * CHUNK] for i in range(len(data))]
        begin = time.perf_counter()
        if together:
            results = step_together(streams, chunks)
            latencies.append(time.perf_counter() - begin)  # every chunk of the round waits
            latencies.extend([latencies[-1]] * (len(data) - 1))
        else:
            results = []
            for stream, chunk in zip(streams, chunks):
                begin = time.perf_counter()
                results.append(stream.step(chunk))
                latencies.append(time.perf_counter() - begin)
        for out, result in zip(outputs, results):
            out.append(result["output"])
    seconds = time.perf_counter() - started
    return np.concatenate([np.concatenate(o, axis=1) for o in outputs]), latencies, seconds


def row(sequences, path, chunks, seconds, latencies, batches, error) -> str:
    p50, p99 = np.percentile(np.array(latencies) * 1e3, [50, 99])
    return (f"| {sequences} | {path} | {chunks / seconds:,.0f} | {p50:.2f} | {p99:.2f} | "
            f"{batches} | {error:.1e} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 and 8 sequences, short")
    parser.add_argument("--output", type=Path, default=None, help="the report (markdown)")
    args = parser.parse_args()
    counts, steps = ((2, 8), 4) if args.quick else ((8, 64, 256), 20)
    with tempfile.TemporaryDirectory(prefix="rnnx-serve-bench-") as work:
        report = measure(Path(work), counts, steps)
    if args.output:
        args.output.write_text(report)
        print(f"wrote {args.output}")
    else:
        print(report)


def _in_own_loop(coroutine):
    """asyncio.run in a thread of its own: run.py measures the web runtime first, whose
    playwright (sync API) keeps an event loop running in this thread, where asyncio.run fails."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def measure(work: Path, counts: tuple[int, ...], steps: int) -> str:
    torch.manual_seed(0)
    module = keyword_spotter_lstm().eval()
    export(module, work / "kws", ExportOptions(verify=False))
    options = TritonOptions(model_name="kws", threads=1, max_batch=64, max_sequences=512)
    write_repository(work / "kws", work / "repository", options)
    import tritonclient.grpc as grpcclient

    lines = []
    load = os.getloadavg()[0]  # other work on the cores shows in the figures: say how much
    started = time.perf_counter()
    session = rnnx.load(work / "kws", threads=1)
    with Server(work / "repository", 0, 0, log=work / "tritonserver.log") as server:
        client = grpcclient.InferenceServerClient(server.grpc_url)
        warm_up = np.zeros((2, 2 * CHUNK, FEATURES), np.float32)
        _in_own_loop(stream_all(server.grpc_url, "kws", warm_up))
        in_process(session, warm_up, together=False)
        for n in counts:
            rng = np.random.default_rng(n)
            data = rng.standard_normal((n, steps * CHUNK, FEATURES), dtype=np.float32)
            with torch.no_grad():
                want = module(torch.from_numpy(data))[0].numpy()
            before = batch_counts(client, "kws")
            begin = time.perf_counter()
            got, latencies = _in_own_loop(stream_all(server.grpc_url, "kws", data))
            seconds = time.perf_counter() - begin
            after = batch_counts(client, "kws")
            executed = {b: after.get(b, 0) - before.get(b, 0) for b in after}
            executed = {b: c for b, c in executed.items() if c}
            mean = sum(b * c for b, c in executed.items()) / sum(executed.values())
            error = float(np.abs(got - want).max())
            if error > TOLERANCE:
                sys.exit(f"{n} sequences over gRPC: max abs error {error:.2e} > {TOLERANCE}")
            batches = f"mean {mean:.1f}, max {max(executed)}"
            lines.append(row(n, "tritonserver, gRPC", n * steps, seconds, latencies, batches,
                             error))  # fmt: skip
            for together in (False, True):
                got, latencies, seconds = in_process(session, data, together)
                error = float(np.abs(got - want).max())
                path = "in process, step_together" if together else "in process, stream.step"
                lines.append(row(n, path, n * steps, seconds, latencies,
                                 str(n) if together else "1", error))  # fmt: skip
            print(lines[-3], lines[-2], lines[-1], sep="\n", flush=True)
    total = time.perf_counter() - started
    return f"""# Serving: concurrent sequences on tritonserver

Measured by `benchmarks/serve.py`; do not edit by hand.

Model: the keyword spotter (LSTM 40->64, 2 layers), chunks of {CHUNK} frames, {steps} chunks per
sequence; the python-backend repository of `rnnx triton` (onnxruntime, 1 thread, 1 instance,
max batch 64, Oldest strategy) on the tritonserver of nvidia-pytriton, clients on gRPC
(tritonclient asyncio, one request in flight per sequence). Latency is per chunk as the client
sees it (send to answer). Server batch sizes: requests per model execution (Triton's statistics).
In process: the same streams through `rnnx.load(dir).stream()`, one `step` per chunk, or all
sequences' chunks batched by `step_together` (a chunk's latency is its round's). Every output
was checked against eager PyTorch on the whole sequence (max abs error column).

- Machine: {platform.machine()}, {os.cpu_count()} cores visible, shared by client, server and
  model; load average when the run began: {load:.1f}
- Versions: rnnx {rnnx.__version__}, Python {platform.python_version()}, tritonserver from
  nvidia-pytriton {_version("nvidia-pytriton")}, tritonclient {_version("tritonclient")}
- Date: {datetime.date.today()}; {total:.0f} s

| sequences | path | chunks/s | p50 ms | p99 ms | server batch sizes | max abs error |
|---|---|---|---|---|---|---|
{chr(10).join(lines)}
"""


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
