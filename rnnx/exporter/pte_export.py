"""PyTorch module -> ExecuTorch program (`model.pte`), fixed-chunk variant.

`aten.lstm`/`gru`/`rnn_*` are not ExecuTorch core ops, so torch.export decomposes each layer
into one step per time step, which freezes the time axis. The program therefore holds two
methods at fixed lengths, states as explicit inputs and outputs: `forward` runs a chunk of
`--chunk N` steps and `step` runs one; a sequence of any length is N-step chunks then single
steps for the rest (runtimes/executorch_session.py), which carrying the states makes exact. So
only a model that streams has this format: one that needs whole sequences (bidirectional,
stateless) would take exactly N steps, which no verifier case nor caller could rely on (the
dynamic-time variant of the issue is not built). The batch is 1, the on-device case: with a
dynamic batch ExecuTorch 1.5 plans a GRU's memory for the example's batch and refuses any
larger one at run time, so a batch runs as one call per sequence. XNNPACK takes the matmuls;
the rest runs on portable kernels.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from rnnx.core.errors import ExportError, first_line
from rnnx.core.signature import random_inputs
from rnnx.exporter.plan import FormatSkipped, WriteJob
from rnnx.exporter.pt2_export import _quiet

DEFAULT_CHUNK = 16


def write_pte(job: WriteJob, path: Path) -> dict[str, Any]:
    """The `pte` format's writer (rnnx/formats.py); its notes name the chunk length and the
    methods, which the runtime reads back from the manifest."""
    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
    except ImportError as error:
        raise FormatSkipped("ExecuTorch is not installed (pip install executorch)") from error
    signature = job.signature
    if signature.axes or any("time" not in t.dims for t in signature.data_inputs):
        raise FormatSkipped("the pte format takes inputs with a plain time axis")
    if any(t.role == "lengths" for t in signature.inputs):
        raise FormatSkipped("the pte format does not take a lengths input")
    if not (signature.streamable and signature.state_pairs):
        raise FormatSkipped(
            "the fixed-chunk pte format needs a model that streams (this one needs whole "
            "sequences: bidirectional, stateless or a lengths input)"
        )
    chunk = job.chunk
    lengths = {"forward": chunk, **({"step": 1} if chunk > 1 else {})}
    started = time.perf_counter()
    with _quiet():
        try:
            programs = {name: _export(job, steps) for name, steps in lengths.items()}
            lowered = to_edge_transform_and_lower(programs, partitioner=[XnnpackPartitioner()])
            buffer = lowered.to_executorch().buffer
        except Exception as error:  # torch.export's and ExecuTorch's own error types
            raise ExportError(f"ExecuTorch export failed: {first_line(error)}") from error
    path.write_bytes(buffer)
    return {"chunk": chunk, "methods": lengths, "batch": 1,
            "export_s": round(time.perf_counter() - started, 2)}  # fmt: skip


def _export(job: WriteJob, steps: int) -> torch.export.ExportedProgram:
    """torch.export of the plan's module at `steps` time steps and batch 1."""
    plan = job.plan
    example = random_inputs(job.signature, {"batch": 1, "time": steps})
    tensors = tuple(torch.from_numpy(example[t.name]) for t in plan.inputs)
    return torch.export.export(plan.module, tensors)
