"""PyTorch module -> ExecuTorch program (`model.pte`), in one of two variants.

`aten.lstm`/`gru`/`rnn_*` are not ExecuTorch core ops: torch.export decomposes each layer into
one step per time step, which freezes the time axis. So the program is either

- fixed-chunk: two methods at fixed lengths, states as explicit inputs and outputs: `forward`
  runs a chunk of `--chunk N` steps and `step` runs one; a sequence of any length is N-step
  chunks then single steps for the rest (runtimes/executorch_session.py), which carrying the
  states makes exact. XNNPACK takes every matmul of the unrolled steps. Only for a model that
  streams: one that needs whole sequences would take exactly N steps.
- dynamic-time: each recurrent layer rewritten as a loop over time (exporter/scan_layers.py)
  and exported with a symbolic time axis of 1 to `--max-time T` steps, one method `forward`.
  XNNPACK takes the input matmuls; the loop body runs on portable kernels. ExecuTorch plans
  its buffers for T steps, so T is declared, and a longer sequence is refused.

A model that streams gets fixed-chunk unless `--max-time` is given; one that does not
(bidirectional, stateless) gets dynamic-time, up to DEFAULT_MAX_TIME unless `--max-time` says.
The batch is 1, the on-device case: with a dynamic batch ExecuTorch 1.5 plans a GRU's memory
for the example's batch and refuses any larger one at run time, so a batch runs as one call
per sequence. A lengths input (packed sequences) has no pte.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from rnnx.core.errors import ExportError, RnnxError, first_line
from rnnx.core.quiet import third_party_logs
from rnnx.core.signature import random_inputs
from rnnx.exporter.plan import EXAMPLE_SIZES, FormatSkipped, WriteJob, dynamic_shapes
from rnnx.exporter.scan_layers import recurrent_kernels_as_scans

DEFAULT_CHUNK = 16
# Longer than any case the verifier runs (100 steps). The buffers ExecuTorch plans grow with it
# (LSTM 80->256: 2.4 MB at 64 steps, 7.4 MB at 1024, 44 MB at 8192).
DEFAULT_MAX_TIME = 1024


def write_pte(job: WriteJob, path: Path) -> dict[str, Any]:
    """The `pte` format's writer (rnnx/formats.py); its notes name the variant and its methods
    (name -> time steps per call: exactly, or at most for dynamic-time), which the runtime
    reads back from the manifest."""
    try:
        with third_party_logs():
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
                XnnpackPartitioner,
            )
            from executorch.exir import to_edge_transform_and_lower
    except ImportError as error:
        raise FormatSkipped("ExecuTorch is not installed (pip install executorch)") from error
    signature = job.signature
    if signature.axes or any("time" not in t.dims for t in signature.data_inputs):
        raise FormatSkipped("the pte format takes inputs with a plain time axis")
    if any(t.role == "lengths" for t in signature.inputs):
        raise FormatSkipped("the pte format does not take a lengths input")
    streams = signature.streamable and bool(signature.state_pairs)
    started = time.perf_counter()
    # Without autograd, ExecuTorch's passes skip building each scan's backward graph: half
    # the lowering time of a 3-layer GRU (31 -> 15 s here)
    with third_party_logs(), torch.no_grad():
        try:
            if streams and job.max_time is None:
                chunk = job.chunk
                methods = {"forward": chunk, **({"step": 1} if chunk > 1 else {})}
                notes: dict[str, Any] = {"variant": "fixed-chunk", "chunk": chunk}
                programs = {name: _export_fixed(job, steps) for name, steps in methods.items()}
            else:
                max_time = DEFAULT_MAX_TIME if job.max_time is None else job.max_time
                methods = {"forward": max_time}
                notes = {"variant": "dynamic-time", "max_time": max_time}
                programs = {"forward": _export_dynamic(job, max_time)}
            lowered = to_edge_transform_and_lower(programs, partitioner=[XnnpackPartitioner()])
            buffer = lowered.to_executorch().buffer
        except RnnxError:
            raise
        except Exception as error:  # torch.export's and ExecuTorch's own error types
            raise ExportError(f"ExecuTorch export failed: {first_line(error)}") from error
    path.write_bytes(buffer)
    return {**notes, "methods": methods, "batch": 1,
            "export_s": round(time.perf_counter() - started, 2)}  # fmt: skip


def _export_fixed(job: WriteJob, steps: int) -> torch.export.ExportedProgram:
    """torch.export of the plan's module at `steps` time steps and batch 1."""
    return torch.export.export(job.plan.module, _example(job, steps))


def _export_dynamic(job: WriteJob, max_time: int) -> torch.export.ExportedProgram:
    """torch.export of the plan's module, its layers as scans, at batch 1 and 1..max_time steps."""
    if max_time < 2:  # torch.export makes an axis of example size 1 a constant
        raise RnnxError(f"--max-time must be at least 2 for the pte format, got {max_time}")
    plan = job.plan
    example = _example(job, min(EXAMPLE_SIZES["time"], max_time))
    shapes = dynamic_shapes(plan.module, plan.inputs, maximum={"time": max_time})
    with recurrent_kernels_as_scans():
        return torch.export.export(plan.module, example, dynamic_shapes=shapes)


def _example(job: WriteJob, steps: int) -> tuple[torch.Tensor, ...]:
    """Random example inputs of one sequence (batch 1) of `steps` time steps, in plan order."""
    example = random_inputs(job.signature, {"batch": 1, "time": steps})
    return tuple(torch.from_numpy(example[t.name]) for t in job.plan.inputs)
