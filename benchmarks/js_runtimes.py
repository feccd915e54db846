"""Error and latency of the web (onnxruntime-web, WASM, headless Chromium) and node
(onnxruntime-node) runtimes beside native onnxruntime and eager PyTorch.

    python benchmarks/js_runtimes.py [--repeats 30]

Per model: the verifier's worst absolute error against eager (whole sequences and streamed in
chunks), and the p50 latency of batch 1 × 100 steps and of one 10-step chunk of a stream, on one
thread. The web and node rows are timed from Python (the transport included) and inside the
browser or Node ("(js)": the deployment target's own cost).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch import nn

import rnnx
from rnnx.benchmark import BenchOptions, bench
from rnnx.pipeline import ExportOptions, export

MODELS = {
    "LSTM 2×256": (lambda: nn.LSTM(40, 256, 2), True),
    "GRU 2×256 bidirectional": (lambda: nn.GRU(40, 256, 2, bidirectional=True), False),
    "LSTM 512 proj 128 (Scan)": (lambda: nn.LSTM(40, 512, proj_size=128), False),
    "RNN ReLU 2×256": (lambda: nn.RNN(40, 256, 2, nonlinearity="relu"), False),
}
RUNTIMES = ("onnxruntime", "node", "web")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    print("| model | runtime | max abs error (whole / streamed) | 1 × 100 p50 ms | "
          "chunk of 10 p50 ms |")  # fmt: skip
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for name, (make, int8) in MODELS.items():
            directory = Path(work) / name.replace(" ", "-")
            export(make().eval(), directory,
                   ExportOptions(formats=("onnx",), quantize="int8" if int8 else None))  # fmt: skip
            targets = [(r, "onnx") for r in RUNTIMES]
            targets += [(r, "onnx-int8") for r in RUNTIMES] if int8 else []
            errors = {}
            for runtime, format in targets:
                summary = rnnx.verify(directory, runtime=runtime, format=format).summary()
                label = f"{runtime}:{format}"
                whole = summary[label]["max_abs_error"]
                streamed = summary.get(f"{label} streamed", {}).get("max_abs_error")
                errors[runtime if format == "onnx" else label] = (whole, streamed)
            names = ("eager", *(r if f == "onnx" else f"{r}:{f}" for r, f in targets))
            options = BenchOptions(runtimes=names, times=(100,), repeats=args.repeats)
            whole_rows = {r.runtime: r for r in bench(directory, options)}
            streamable = rnnx.load(directory, "onnxruntime").signature.streamable
            chunk_rows = {}
            if streamable:
                chunked = BenchOptions(runtimes=names, times=(10,), chunks=(10,),
                                       repeats=args.repeats * 3)  # fmt: skip
                chunk_rows = {r.runtime: r for r in bench(directory, chunked)}
            for runtime, row in whole_rows.items():
                base = runtime.removesuffix(" (js)")
                error = errors.get(base)
                text = "-" if error is None or runtime.endswith("(js)") else (
                    f"{error[0]:.2g} / {error[1]:.2g}" if error[1] is not None
                    else f"{error[0]:.2g} / -")  # fmt: skip
                chunk = chunk_rows.get(runtime)
                print(f"| {name} | {runtime} | {text} | {row.p50_ms:.3f} | "
                      f"{f'{chunk.p50_ms:.3f}' if chunk else '-'} |")  # fmt: skip


if __name__ == "__main__":
    main()
