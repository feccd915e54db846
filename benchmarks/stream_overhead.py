"""What a Python stream step costs over a raw onnxruntime InferenceSession.run doing the same.

One step per call at batch 1 (LSTM 80->256 ×2, 1 thread): the raw loop feeds the states the
last call returned; rnnx's `stream.step` does that with its input checks and the NaN guard on,
once with numpy states and a plain run (the CPU default) and once with states bound through IO
binding (the device-provider default). Interleaved rounds, medians. Target: ≤ 1.2× raw.

    python benchmarks/stream_overhead.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

import rnnx
from rnnx.pipeline import ExportOptions, export

CALLS = 200  # steps per timed block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    arguments = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as work:
        directory = Path(work) / "lstm"
        export(nn.LSTM(80, 256, 2).eval(), directory, ExportOptions(formats=("onnx",)))
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        raw = ort.InferenceSession(
            str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        x = np.random.default_rng(0).standard_normal((1, 1, 80)).astype(np.float32)
        state = {"h0": np.zeros((2, 1, 256), np.float32), "c0": np.zeros((2, 1, 256), np.float32)}

        def raw_step() -> None:
            _, state["h0"], state["c0"] = raw.run(None, {"input": x, **state})

        plain = rnnx.load(directory, threads=1, inter_op_threads=1).stream()
        bound = rnnx.load(directory, threads=1, inter_op_threads=1, io_binding=True).stream()
        steps: dict[str, Callable[[], object]] = {
            "raw InferenceSession.run": raw_step,
            "stream.step (plain run, CPU default)": lambda: plain.step(x),
            "stream.step (IO binding)": lambda: bound.step(x),
        }
        times: dict[str, list[float]] = {name: [] for name in steps}
        for step in steps.values():  # warm up
            for _ in range(CALLS):
                step()
        for _ in range(arguments.rounds):
            for name, step in steps.items():
                start = time.perf_counter()
                for _ in range(CALLS):
                    step()
                times[name].append((time.perf_counter() - start) / CALLS * 1e6)
    base = float(np.median(times["raw InferenceSession.run"]))
    for name, measured in times.items():
        median = float(np.median(measured))
        print(f"{name:40s} {median:8.1f} µs  {median / base:.3f}× raw")


if __name__ == "__main__":
    main()
