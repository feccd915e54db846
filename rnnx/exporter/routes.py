"""Capture routes: the ways a model becomes an ONNX graph, a registry tried in order.

rnnx's own route comes first: torch.export with the recurrent layers as custom ops, lowered to
native ONNX ops, every batch and time axis declared dynamic. When it cannot capture a model
(size arithmetic in Python that torch.export guards on, a tensor used as a slice bound), the
others are tried: torch.export letting it decide which axes stay dynamic, then the
TorchScript-based ONNX exporter (`torch.onnx.export(dynamo=False)`, which traces sizes as
tensors and writes nn.LSTM/GRU/RNN as native ONNX ops itself). A route that captures is not
yet a route that works: the pipeline keeps the first whose artifact passes verification at
new shapes (pipeline._write) and records in the manifest which route made the graph and why
the earlier ones failed, as Polygraphy's runner list does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Callable, Iterator, Sequence

import onnx
import onnx_ir as ir
import torch

from rnnx.core.errors import ExportError, RnnxError, first_line
from rnnx.core.signature import Dim
from rnnx.exporter import axes
from rnnx.exporter.diagnose import explain
from rnnx.exporter.onnx_export import _first_line, _quiet, build_onnx, output_dims
from rnnx.exporter.plan import ExportPlan
from rnnx.exporter.recurrent_ops import host_lengths_traceable


@dataclasses.dataclass(frozen=True)
class CaptureFailure:
    """A route that made no graph, and why (one line, naming the user's file:line if known)."""

    route: str
    error: RnnxError

    @property
    def reason(self) -> str:
        return str(self.error)


@dataclasses.dataclass
class Captured:
    route: str
    model: ir.Model
    dims: list[tuple[Dim, ...]]  # the graph outputs' dims (output_dims), for the signature


@dataclasses.dataclass(frozen=True)
class Route:
    name: str
    description: str
    capture: Callable[[ExportPlan, int], Captured | CaptureFailure]

    def run(self, plan: ExportPlan, opset: int) -> Captured | CaptureFailure:
        """Capture, then put back what capturing assigned to the model (a forward that sets
        attributes, weight drop's: torch.export and the trace both run it, and may leave
        parameters where plain tensors were), so the next route and eager see it as it was."""
        with _restored(plan.module):
            return self.capture(plan, opset)


def _torch_export(plan: ExportPlan, opset: int) -> Captured | CaptureFailure:
    try:
        model = build_onnx(plan.module, plan.example, plan.inputs, plan.output_names, opset=opset)
    except RnnxError as error:
        return CaptureFailure("torch.export", error)
    return Captured("torch.export", model, output_dims(model))


def _torch_export_auto(plan: ExportPlan, opset: int) -> Captured | CaptureFailure:
    try:
        model = build_onnx(plan.module, plan.example, plan.inputs, plan.output_names,
                           opset=opset, automatic=True)  # fmt: skip
        dims = probe_output_dims(plan, output_dims(model))
    except RnnxError as error:
        return CaptureFailure("torch.export-auto", error)
    except Exception as error:  # the model itself fails at other sizes: nothing to verify
        reason = f"forward fails at other sizes ({first_line(error)})"
        return CaptureFailure("torch.export-auto", ExportError(reason))
    return Captured("torch.export-auto", model, dims)


def _legacy(plan: ExportPlan, opset: int) -> Captured | CaptureFailure:
    """torch.onnx.export(dynamo=False): a trace in which sizes are tensors, so size arithmetic
    stays in the graph; its own symbolics write the recurrent layers as native ONNX ops."""
    dynamic = {t.name: {axis: d for axis, d in enumerate(t.dims) if isinstance(d, str)}
               for t in plan.inputs}  # fmt: skip
    buffer = io.BytesIO()
    module = plan.module  # not a copy: a forward may be a closure over the model itself
    with _restored(module), host_lengths_traceable(module), _quiet():
        try:
            torch.onnx.export(module, tuple(plan.example), buffer, dynamo=False,
                              opset_version=opset, input_names=[t.name for t in plan.inputs],
                              output_names=list(plan.output_names), dynamic_axes=dynamic,
                              do_constant_folding=True)  # fmt: skip
        except Exception as error:  # torch's errors: mapped to one line here
            message = explain(error, _first_line(error), what="the TorchScript-based exporter")
            return CaptureFailure("torch.onnx-legacy", ExportError(message))
    model = ir.serde.deserialize_model(onnx.load_from_string(buffer.getvalue()))
    read = {value.name for value in model.graph.inputs}
    unread = [t.name for t in plan.inputs if t.name not in read]
    if unread:  # the trace made what it computes from them constants
        return CaptureFailure("torch.onnx-legacy", ExportError(
            f"the traced graph does not read input {unread[0]!r}: the trace fixed what forward "
            "computes from it (a Python loop or branch over its values)"
        ))  # fmt: skip
    try:
        dims = probe_output_dims(plan, output_dims(model))
    except Exception as error:  # the model itself fails at other sizes: nothing to verify
        reason = f"forward fails at other sizes ({first_line(error)})"
        return CaptureFailure("torch.onnx-legacy", ExportError(reason))
    return Captured("torch.onnx-legacy", model, dims)


@contextlib.contextmanager
def _restored(module: torch.nn.Module) -> Iterator[None]:
    """Every submodule's parameters, buffers, tensor attributes and train/eval mode as they
    were before (the TorchScript-based exporter puts the mode back with model.train(mode) on
    the top module, which resets every submodule to it)."""
    saved = [(m, dict(m._parameters), dict(m._buffers),
              {k: v for k, v in vars(m).items() if isinstance(v, torch.Tensor)}, m.training)
             for m in module.modules()]  # fmt: skip
    try:
        yield
    finally:
        for m, parameters, buffers, tensors, training in saved:
            m.training = training
            m._parameters.clear()
            m._parameters.update(parameters)
            m._buffers.clear()
            m._buffers.update(buffers)
            for key in [k for k, v in vars(m).items() if isinstance(v, torch.Tensor)]:
                if key not in tensors:
                    delattr(m, key)
            for key, value in tensors.items():
                object.__setattr__(m, key, value)


ROUTES: tuple[Route, ...] = (
    Route("torch.export", "torch.export, recurrent layers as rnnx custom ops", _torch_export),
    Route("torch.export-auto", "torch.export with automatic dynamic shapes", _torch_export_auto),
    Route("torch.onnx-legacy", "torch.onnx.export(dynamo=False), the TorchScript tracer", _legacy),
)


def probe_output_dims(
    plan: ExportPlan, graph_dims: Sequence[tuple[Dim, ...]]
) -> list[tuple[Dim, ...]]:
    """Output dims named as rnnx's own route names them ("batch", "time", "batch*time"), found
    by running the model at the example's sizes and at others: a route whose graph names its
    symbolic dims after its nodes ("Transposey_dim_0") says nothing of what they are."""
    example = axes.Tensors.of(plan.inputs, plan.example)
    first = example.sizes()
    constraints = {a.name: a for a in plan.axes}
    second = {n: constraints[n].fit(s + 2) if n in constraints else s + 2
              for n, s in first.items()}  # fmt: skip
    with torch.inference_mode():
        runs = [[tuple(o.shape) for o in plan.module(*example.resized(sizes))]
                for sizes in (first, second)]  # fmt: skip
    result = []
    for index, dims in enumerate(graph_dims):
        named: list[Dim] = []
        for axis, dim in enumerate(dims):
            sizes = [run[index][axis] for run in runs]
            if isinstance(dim, int) or sizes[0] == sizes[1]:
                named.append(dim if isinstance(dim, int) else int(sizes[0]))
                continue
            candidates = {name: [s[name] for s in (first, second)] for name in first}
            if {"batch", "time"} <= set(first):
                candidates["batch*time"] = [s["batch"] * s["time"] for s in (first, second)]
            match = next((n for n, v in candidates.items() if v == sizes), None)
            named.append(match or f"{plan.output_names[index]}_{axis}")
        result.append(tuple(named))
    return result
