"""PyTorch module -> TorchScript file (traced), with rnnx metadata as extra files."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from rnnx.core.errors import ExportError, first_line
from rnnx.core.metadata import TORCHSCRIPT_FILE as METADATA_FILE
from rnnx.exporter.plan import WriteJob
from rnnx.exporter.recurrent_ops import host_lengths_traceable


def export_torchscript(
    module: torch.nn.Module,
    example_inputs: Sequence[torch.Tensor],
    path: str | os.PathLike,
    *,
    metadata: Mapping[str, str] = {},
) -> None:
    # Tracing (torch.jit.script fails on nn.LSTM) records
    # aten::lstm/gru/rnn_* as single ops, so batch and time stay free; the verifier checks
    # that at other shapes.
    # TorchScript is deprecated upstream and trace is missing on newer Pythons: pt2
    # (torch.export + AOTInductor) is the route that needs none of it.
    route = "export --format pt2 instead (torch.export + AOTInductor, no TorchScript)"
    trace = getattr(torch.jit, "trace", None)
    if trace is None:
        raise ExportError(f"torch.jit.trace is not available in this torch; {route}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with host_lengths_traceable(module):
                traced = trace(module, tuple(example_inputs), check_trace=False)
        except Exception as error:
            raise ExportError(f"torch.jit.trace failed: {first_line(error)}; {route}") from error
    torch.jit.save(
        traced, os.fspath(path), _extra_files={METADATA_FILE: json.dumps(dict(metadata))}
    )


def write_torchscript(job: WriteJob, path: Path) -> None:
    """The `torchscript` format's writer (rnnx/formats.py)."""
    export_torchscript(job.plan.module, job.plan.example, path, metadata=job.metadata)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    extra = {METADATA_FILE: ""}
    torch.jit.load(os.fspath(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra[METADATA_FILE] or "{}")
