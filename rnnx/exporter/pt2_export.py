"""PyTorch module -> AOTInductor package (`model.pt2`): torch.export, then compiled ahead of time.

No TorchScript: the module is captured by torch.export with dynamic batch and time, compiled
by AOTInductor into a shared library, and packaged with its weights. Python loads it with
`torch._inductor.aoti_load_package`, C++ with `torch::inductor::AOTIModelPackageLoader`. The
rnnx metadata (core/metadata.py) rides inside the package as AOTInductor metadata, read by
either side's `get_metadata()`.

torch.export decomposes nn.RNN/LSTM/GRU into one step per time step, which freezes the time
axis (pytorch/pytorch#115092). `recurrent_aten_ops_kept` keeps each layer the single aten op
it is (`aten.lstm`, `aten.gru`, `aten.rnn_tanh`, `aten.rnn_relu`): AOTInductor then calls the
ATen kernel itself (a fallback kernel), which libtorch has in Python and C++ alike. The ONNX
path's custom ops (recurrent_ops.py) are Python and could not run in a C++ application.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnx.core.errors import ExportError, first_line
from rnnx.core.quiet import third_party_logs
from rnnx.core.signature import Axis, TensorSpec
from rnnx.exporter.plan import FormatSkipped, WriteJob, dynamic_shapes

_aten = torch.ops.aten
# The whole-sequence overloads nn.RNN/LSTM/GRU (and code calling torch._VF) reach; `.data`
# (packed sequences) has a data-dependent size and is left to torch.export to refuse.
RECURRENT_OPS = (_aten.lstm.input, _aten.gru.input, _aten.rnn_tanh.input, _aten.rnn_relu.input)


def _recurrent_fake(fake_mode: Any, func: Any, input: Tensor, hx: Any, params: Any,
                    has_biases: bool, num_layers: int, dropout: float, train: bool,
                    bidirectional: bool, batch_first: bool) -> tuple[Tensor, ...]:  # fmt: skip
    """The output shapes of a recurrent aten op without running it step by step (torch's own
    fake implementation is the step-by-step decomposition, which fixes the time axis)."""
    states = tuple(hx) if isinstance(hx, (list, tuple)) else (hx,)
    size = (2 if bidirectional else 1) * states[0].shape[-1]
    time, batch = (input.shape[1], input.shape[0]) if batch_first else input.shape[:2]
    with fake_mode:
        # The layout the ATen kernels return (Inductor reads the output with these strides):
        # time-major and contiguous, transposed back for batch_first; contiguous states.
        output = input.new_empty(time, batch, size)
        output = output.transpose(0, 1) if batch_first else output
        return (output, *(s.new_empty(s.shape) for s in states))


@contextlib.contextmanager
def recurrent_aten_ops_kept() -> Iterator[None]:
    """Within the block, torch.export and AOTInductor keep RECURRENT_OPS as single aten ops.

    Uses torch.export's own mechanism for preserving a composite op (the one
    `ExportedProgram.run_decompositions` applies to the ops a decomposition table leaves out),
    with a shape-only fake implementation, and takes the ops out of the decomposition tables
    that fake tensors and Inductor consult; everything is restored on exit.
    """
    import torch._decomp
    import torch._inductor.decomposition as inductor_decompositions
    from torch._export.utils import _special_op_to_preserve_cia
    from torch._subclasses.fake_impls import op_implementations_dict, register_op_impl
    from torch.export.exported_program import _override_composite_implicit_decomp

    tables = [torch._decomp.decomposition_table, inductor_decompositions.decompositions]
    removed = [{op: table.pop(op) for op in RECURRENT_OPS if op in table} for table in tables]
    fakes = {op: op_implementations_dict.get(op) for op in RECURRENT_OPS}
    for op in RECURRENT_OPS:
        op_implementations_dict.pop(op, None)
        register_op_impl(op)(_recurrent_fake)
    try:
        with _override_composite_implicit_decomp(
            {op: _special_op_to_preserve_cia for op in RECURRENT_OPS}
        ):
            yield
    finally:
        for table, ops in zip(tables, removed):
            table.update(ops)
        for op, fake in fakes.items():
            op_implementations_dict.pop(op, None)
            if fake is not None:
                op_implementations_dict[op] = fake


def export_program(
    module: torch.nn.Module,
    example_inputs: Sequence[Tensor],
    inputs: Sequence[TensorSpec],
    axes: Sequence[Axis] = (),
) -> torch.export.ExportedProgram:
    """torch.export of `module` with the signature's batch/time axes dynamic, recurrent layers
    kept whole (call inside `recurrent_aten_ops_kept`)."""
    shapes = dynamic_shapes(module, inputs, axes)
    with third_party_logs():
        try:
            return torch.export.export(module, tuple(example_inputs), dynamic_shapes=shapes)
        except Exception as error:
            failure = error
        if "Constraints violated" in str(failure):
            # The model's own code asked whether a symbolic size is 1 (a view after a conv
            # front end: "time - 4 != 1"), which guards the axis: size-oblivious reasoning
            # answers for the general case instead, whose graph holds at size 1 too (the
            # verifier runs the smallest sizes). Tried second: on other models it adds guards.
            try:
                with _size_oblivious():
                    return torch.export.export(module, tuple(example_inputs), dynamic_shapes=shapes)
            except Exception:
                pass  # the first failure is the one to report
        raise ExportError(f"torch.export failed: {first_line(failure)}") from failure


def compile_package(
    program: torch.export.ExportedProgram, path: Path, metadata: Mapping[str, str]
) -> None:
    """AOTInductor-compile `program` into the package `path`, with `metadata` inside it."""
    options = {"aot_inductor.metadata": dict(metadata)}
    # compiled beside `path` (one file system, so the rename holds): a failure leaves nothing
    with third_party_logs(), tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        try:
            built = torch._inductor.aoti_compile_and_package(
                program, package_path=str(Path(scratch) / path.name), inductor_configs=options
            )
        except Exception as error:
            raise ExportError(f"AOTInductor compilation failed: {first_line(error)}") from error
        Path(built).replace(path)


def write_pt2(job: WriteJob, path: Path) -> dict[str, Any]:
    """The `pt2` format's writer (rnnx/formats.py); its note is the time compiling took."""
    plan = job.plan
    started = time.perf_counter()
    with recurrent_aten_ops_kept():
        try:
            program = export_program(plan.module, plan.example, plan.inputs, job.signature.axes)
        except ExportError as error:
            if any(t.role == "lengths" for t in plan.inputs):
                # nn.LSTM's PackedSequence path reads batch_sizes (a tensor) as sizes
                raise FormatSkipped(
                    f"torch.export cannot capture packed sequences (a lengths input): {error}"
                ) from error
            raise
        exported = time.perf_counter()
        compile_package(program, path, job.metadata)
    done = time.perf_counter()
    return {"export_s": round(exported - started, 2), "compile_s": round(done - exported, 2)}


def read_metadata(path: str | Path) -> dict[str, str]:
    """The rnnx metadata inside a package (AOTInductor adds keys of its own: AOTI_*)."""
    loaded = torch._inductor.aoti_load_package(str(path))
    return {k: v for k, v in loaded.get_metadata().items() if k.startswith("rnnx.")}


def _size_oblivious() -> Any:
    import torch.fx.experimental._config as shape_config

    return shape_config.patch(backed_size_oblivious=True)
