"""PyTorch module -> ONNX file, with recurrent layers lowered to native ONNX ops."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnx_ir.passes.common
import onnxscript.optimizer
import torch

from rnnx.core.errors import ExportError
from rnnx.core.quiet import third_party_logs
from rnnx.core.signature import Dim, TensorSpec
from rnnx.exporter import lowering
from rnnx.exporter.diagnose import GuardLog, explain, guard_log
from rnnx.exporter.opsets import DEFAULT_OPSET
from rnnx.exporter.plan import FormatSkipped, WriteJob, dynamic_shapes
from rnnx.exporter.recurrent_ops import recurrent_layers_as_custom_ops

_TRANSLATIONS = {
    torch.ops.rnnx.lstm.default: lowering.lstm_to_onnx,
    torch.ops.rnnx.rnn.default: lowering.rnn_to_onnx,
}


def build_onnx(
    module: torch.nn.Module,
    example_inputs: Sequence[torch.Tensor],
    inputs: Sequence[TensorSpec],
    output_names: Sequence[str],
    *,
    opset: int = DEFAULT_OPSET,
    automatic: bool = False,
) -> ir.Model:
    """Export `module` (forward takes `inputs`, in order) with its "batch"/"time" axes dynamic
    (`automatic`: torch.export decides which stay dynamic, within what ranges)."""
    dynamic = dynamic_shapes(module, inputs, automatic=automatic)  # every symbolic axis from 1
    with recurrent_layers_as_custom_ops(module), _quiet(), guard_log() as guards:
        try:
            program = torch.onnx.export(
                module,
                tuple(example_inputs),
                dynamo=True,
                opset_version=opset,
                input_names=[t.name for t in inputs],
                output_names=list(output_names),
                dynamic_shapes=dynamic,
                custom_translation_table=_TRANSLATIONS,
                optimize=False,
                verbose=False,
            )
        except Exception as error:  # torch.export/onnx errors are long multi-page reports
            raise ExportError(explain(error, _first_line(error), guards)) from error
    model = program.model
    # Fold the gate reordering (weights.py) into initializers, whatever the weights' size:
    # the optimizer's default limits would leave large layers reordering at every run.
    with _quiet():  # the optimizer logs a line per constant it leaves unfolded
        onnxscript.optimizer.optimize(model, input_size_limit=2**62, output_size_limit=2**62)
    _check_dynamic(model, inputs, guards, _source_files(module))
    return model


def output_dims(model: ir.Model) -> list[tuple[Dim, ...]]:
    """The graph outputs' dims: ints, or symbolic names ("batch", "time", "batch*time"...)."""
    result = []
    for value in model.graph.outputs:
        shape = value.shape or ()
        result.append(tuple(d if isinstance(d, int) else str(d) for d in shape))
    return result


def save_onnx(model: ir.Model, path: str | os.PathLike, metadata: Mapping[str, str]) -> None:
    for key, value in metadata.items():
        model.metadata_props[key] = value
    proto = ir.serde.serialize_model(model)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(
            f"exported ONNX model fails onnx.checker: {_first_line(error)}"
        ) from error
    # Models over 2 GB need external data; recurrent models are rarely that big.
    onnx.save_model(proto, os.fspath(path))


def write_onnx(job: WriteJob, path: Path) -> None:
    """The `onnx` format's writer (rnnx/formats.py): the graph the pipeline built."""
    save_onnx(job.onnx_model, path, job.metadata)


def write_onnx_folded(job: WriteJob, path: Path) -> dict[str, object]:
    """The `onnx-folded` format's writer: the model exported again with each projected LSTM
    folded into a native LSTM op (lowering.folded_projections); skipped for models without one,
    or whose projection cannot be undone exactly (W_hr without full row rank)."""
    plan = job.plan
    projected = [m for m in plan.user_module.modules()
                 if isinstance(m, torch.nn.LSTM) and m.proj_size]  # fmt: skip
    if not projected:
        raise FormatSkipped("no projected LSTM (proj_size) to fold")
    with lowering.folded_projections():
        model = build_onnx(plan.module, plan.example, plan.inputs, plan.output_names,
                           opset=job.opset)  # fmt: skip
    folded = fold_pinv(model)
    save_onnx(model, path, job.metadata)
    return {"folded_projections": folded}


# W_hr·pinv(W_hr) must be the identity within this, or the lifted initial state is not h0.
_LIFT_TOLERANCE = 1e-4


def fold_pinv(model: ir.Model) -> int:
    """Replace each lowering.PINV_OP placeholder by the initializer pinv(W_hr)^T, computed in
    float64 from the constant W_hr; returns how many. Raises FormatSkipped when a W_hr has no
    exact right inverse (rank below proj_size, or too ill-conditioned for float32)."""
    graph = model.graph
    count = 0
    for node in list(graph):
        if node.domain != lowering.PINV_DOMAIN or node.op_type != lowering.PINV_OP:
            continue
        source = node.inputs[0]
        if source is None or source.const_value is None:
            raise FormatSkipped("a projection weight (W_hr) is computed at run time: not folded")
        w_hr = source.const_value.numpy().astype(np.float64)
        lift = np.linalg.pinv(w_hr)
        if np.abs(w_hr @ lift - np.eye(w_hr.shape[0])).max() > _LIFT_TOLERANCE:
            rank, proj = np.linalg.matrix_rank(w_hr), w_hr.shape[0]
            why = f"rank {rank} < proj_size {proj}" if rank < proj else "too ill-conditioned"
            raise FormatSkipped(
                f"a projection weight W_hr {w_hr.shape} has no exact right inverse ({why}), so "
                "h0 cannot be lifted: use the onnx format"
            )
        placeholder = node.outputs[0]
        tensor = ir.tensor(lift.T.astype(np.float32), name=f"{placeholder.name}_pinv")
        value = ir.Value(name=tensor.name, shape=tensor.shape, type=ir.TensorType(tensor.dtype),
                         const_value=tensor)  # fmt: skip
        graph.register_initializer(value)
        ir.convenience.replace_all_uses_with(placeholder, value)
        graph.remove(node, safe=True)
        count += 1
    model.opset_imports.pop(lowering.PINV_DOMAIN, None)
    # W_hh and W_hr themselves are now used by nothing (their products were folded)
    ir.passes.common.RemoveUnusedNodesPass()(model)
    return count


def _check_dynamic(
    model: ir.Model, inputs: Sequence[TensorSpec], guards: GuardLog, files: list[str]
) -> None:
    """Fail loudly if the exporter froze an axis that the signature declares dynamic, naming
    the line of the user's code that fixed it when torch logged one."""
    for value, tensor in zip(model.graph.inputs, inputs):
        for axis, dim in enumerate(tensor.dims):
            actual = value.shape[axis] if value.shape is not None else None
            if isinstance(dim, str) and isinstance(actual, int):
                where = guards.where_fixed(actual, files)
                frozen = (
                    f"the exported graph fixed the {dim} axis of input {tensor.name!r} to {actual}"
                )
                if where is None:
                    raise ExportError(frozen)
                raise ExportError(
                    f"{where} fixes the {dim} axis of input {tensor.name!r} to {actual} (a Python "
                    f"loop, if, len() or int() over a size); fix: keep the {dim} size symbolic "
                    "(tensor ops over the whole axis, torch.where), or pad to the sizes you need"
                )


def _source_files(module: torch.nn.Module) -> list[str]:
    """The files defining the module's classes: where the user's lines are read from."""
    files = []
    for sub in module.modules():
        home = sys.modules.get(type(sub).__module__)
        if getattr(home, "__file__", None):
            files.append(str(home.__file__))
    return files


@contextlib.contextmanager
def _quiet():
    """torch.onnx prints progress lines and logs warnings about optional packages: hide them
    (a failure reaches the user as ExportError, once); torch.export prints the graph to stderr
    when it fails: the ExportError says why."""
    names = ("torch.onnx", "torch.export", "torch._export", "torch._dynamo", "torch._guards",
             "torch.fx", "torch.utils._sympy", "onnxscript", "onnx_ir")  # fmt: skip
    with (
        third_party_logs(names),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        yield


def _first_line(error: BaseException) -> str:
    """The informative line of a torch.onnx error: its "Exception summary" names the cause."""
    lines = [line.strip() for line in (str(error).strip() or type(error).__name__).splitlines()]
    lines = [line for line in lines if line]
    if "## Exception summary" in lines:
        cause = lines[lines.index("## Exception summary") + 1]
        cause = cause.split(">: ", 1)[-1]  # drop the "<class '...'>: " prefix
        return cause[:400]
    return lines[0][:400]
