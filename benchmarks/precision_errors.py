"""The errors behind the guide's tolerance table (docs/runtimes.md): for benchmark-sized
layers, the worst absolute error against eager PyTorch of every runtime and precision this
machine offers, over the cases `rnnx verify` checks (its sizes, 100 steps included, zero and
random states, streamed in chunks), on its unit-scale random inputs. A cell marked FAIL did
not pass its tolerance.

    python benchmarks/precision_errors.py
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import torch
from torch import nn

import rnnx
from rnnx.formats import FORMATS, RUNTIMES, runtime_available
from rnnx.pipeline import ExportOptions, export

LAYERS = {
    "LSTM 2×256": lambda: nn.LSTM(80, 256, 2),
    "LSTM 2×256 bidirectional": lambda: nn.LSTM(80, 256, 2, bidirectional=True),
    "LSTM 4×512": lambda: nn.LSTM(80, 512, 4),
    "LSTM 256 proj 128 ×2": lambda: nn.LSTM(80, 256, 2, proj_size=128),
    "LSTM 1024 proj 256 ×2": lambda: nn.LSTM(80, 1024, 2, proj_size=256),
    "GRU 2×256": lambda: nn.GRU(80, 256, 2),
    "GRU 4×512": lambda: nn.GRU(80, 512, 4),
    "RNN tanh 2×256": lambda: nn.RNN(80, 256, 2),
    "RNN ReLU 3×256": lambda: nn.RNN(80, 256, 3, nonlinearity="relu"),
    "RNN ReLU 6×256": lambda: nn.RNN(80, 256, 6, nonlinearity="relu"),
}


def targets() -> list[tuple[str, str]]:
    """(runtime, precision) for every available Python runtime of a default format."""
    found = []
    for runtime in RUNTIMES.values():
        reads_default = any(FORMATS[f].default for f in runtime.formats)
        if runtime.opener and reads_default and runtime_available(runtime):
            found += [(runtime.name, p) for p in ("f32", *runtime.precisions_here())]
    return found


def main() -> None:
    torch.manual_seed(0)
    columns = targets()
    print("| layer | " + " | ".join(f"{r} {p}" for r, p in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    with tempfile.TemporaryDirectory() as work:
        for index, (name, make) in enumerate(LAYERS.items()):
            directory = Path(work) / f"layer{index}"
            formats = tuple(f for f, entry in FORMATS.items() if entry.default)
            export(make().eval(), directory, ExportOptions(formats=formats, verify=False))
            cells = []
            for runtime, precision in columns:
                options = {} if precision == "f32" else {"precision": precision}
                report = rnnx.verify(directory, runtime=runtime, **options)
                # the NaN check's NaN cells are compared by position, not by size
                worst = max(c.max_abs_error for c in report.checks
                            if not math.isnan(c.max_abs_error))  # fmt: skip
                cells.append(f"{worst:.1e}" + ("" if report.passed else " FAIL"))
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
