"""Projected LSTM: rnnx's two lowerings, the Scan (model.onnx) and the folded native op
(model.folded.onnx), in onnxruntime and OpenVINO (f32, bf16), against eager PyTorch.

The measurement behind rnnx/exporter/lowering.py's note. Every variant is checked against
eager before it is timed; rounds are interleaved, one thread each, ratios to eager in the same
rounds. (`rnnx bench` measures the same targets; this prints the compact comparison.)

    python benchmarks/projected_lstm_lowerings.py --hidden 1024 --proj 256 --shapes 1x100,16x100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import openvino as ov
import torch
from torch import nn

from rnnx.pipeline import ExportOptions, export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=int, default=80)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--proj", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--shapes", default="1x100,16x100", help="BATCHxTIME,...")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    lstm = nn.LSTM(args.input, args.hidden, args.layers, proj_size=args.proj).eval()
    options = ExportOptions(formats=("onnx", "onnx-folded"), verify=False)
    directory = export(lstm, Path(tempfile.mkdtemp()) / "export", options).output_dir
    scan_path, folded_path = directory / "model.onnx", directory / "model.folded.onnx"

    def onnxruntime(path: Path):
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return lambda feeds: session.run(None, feeds)

    def openvino(path: Path, precision: str):
        config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": 1}
        request = ov.Core().compile_model(path, "CPU", config).create_infer_request()
        return lambda feeds: [np.array(v) for v in request.infer(feeds).values()]

    def eager(feeds):
        with torch.no_grad():
            x, h0, c0 = (torch.from_numpy(feeds[k]) for k in ("input", "h0", "c0"))
            y, (h_n, c_n) = lstm(x, (h0, c0))
        return [y.numpy(), h_n.numpy(), c_n.numpy()]

    runs = {"eager": eager}
    for name, path in (("scan", scan_path), ("folded", folded_path)):
        runs[f"onnxruntime {name}"] = onnxruntime(path)
        runs[f"openvino f32 {name}"] = openvino(path, "f32")
        runs[f"openvino bf16 {name}"] = openvino(path, "bf16")
    rng = np.random.default_rng(0)
    for shape in args.shapes.split(","):
        batch, steps = (int(v) for v in shape.split("x"))
        sizes = {"input": (steps, batch, args.input), "h0": (args.layers, batch, args.proj),
                 "c0": (args.layers, batch, args.hidden)}  # fmt: skip
        feeds = {k: rng.standard_normal(s).astype(np.float32) for k, s in sizes.items()}
        expected = eager(feeds)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                run(feeds)
                times[name].append(time.perf_counter() - start)
        base = float(np.median(times["eager"]))
        print(f"\nLSTM {args.hidden} proj {args.proj} x{args.layers}, batch {batch}, time {steps}:"
              f" eager {base * 1e3:.1f} ms (1 thread, median of {args.rounds} rounds)")  # fmt: skip
        print("| variant | × eager | max abs error (output, h_n, c_n) |\n|---|---|---|")
        for name, run in runs.items():
            error = max(float(np.abs(a - b).max()) for a, b in zip(run(feeds), expected))
            print(f"| {name} | {np.median(times[name]) / base:.2f} | {error:.1e} |")


if __name__ == "__main__":
    main()
