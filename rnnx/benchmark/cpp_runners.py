"""The C++ runners (cpp/) as benchmark rows: each runner's own --bench, in a separate process.

A runner prints its latency summary as JSON on the last line of stdout, so nothing here parses
human-readable text.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rnnx.core.errors import RnnxError
from rnnx.core.signature import Signature


def runner_latency(
    binary: Path, export_dir: Any, signature: Signature, feeds: dict, *, repeats: int,
    threads: int, chunk: int | None,
) -> tuple[tuple[float, float, float], int] | None:  # fmt: skip
    """((p50, p90, p99) in ms, calls) of the runner on `feeds`' data input; None when the
    model is not one the runners take (one float32 data input, states start at zero)."""
    data = signature.data_inputs
    if len(data) != 1 or data[0].dtype != "float32":
        return None
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "input.npy")
        np.save(path, feeds[data[0].name])
        command = [str(binary), str(export_dir), path, "--bench", str(repeats)]
        command += ["--threads", str(threads)] + (["--chunk", str(chunk)] if chunk else [])
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RnnxError(f"{binary}: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    try:
        summary = json.loads(done.stdout.strip().splitlines()[-1])["bench"]
        micros = (summary["p50_us"], summary["p90_us"], summary["p99_us"])
        return tuple(float(v) / 1e3 for v in micros), int(summary["calls"])  # type: ignore[return-value]
    except (IndexError, ValueError, KeyError, TypeError):
        raise RnnxError(
            f"{binary} printed no JSON latency summary (rebuild: rnnx cpp build)"
        ) from None
