"""What an export traces (the plan), and what each format's writer is handed (the job).

`plan_export` is the one path from a user's module to the module that gets traced, its example
inputs and its I/O: the export pipeline and `rnnx doctor` both start from it.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnx.core.errors import RnnxError, UnsupportedModelError, first_line, warn_user
from rnnx.core.signature import Axis, Signature, TensorSpec, random_inputs
from rnnx.core.spec import LayerSpec
from rnnx.exporter import axes
from rnnx.exporter.diagnose import user_frame
from rnnx.exporter.layer_module import wrap_layer
from rnnx.exporter.model_io import (
    FlatIO,
    ModelIO,
    flatten_inputs,
    input_signature,
    layers_run,
    not_streamable,
    resolve_io,
    whole_model_signature,
)

# The example shape the exporters trace with. Not 1 (torch.export specialises size-1 axes)
# and unlike every shape the verifier checks, so a frozen axis cannot pass unnoticed.
EXAMPLE_SIZES = {"batch": 2, "time": 5}


@dataclasses.dataclass
class ExportPlan:
    """What to export: a module whose forward takes the signature's inputs, and its I/O."""

    module: nn.Module
    example: list[torch.Tensor]
    inputs: list[TensorSpec]
    output_names: list[str]
    spec: LayerSpec | None  # bare layers
    kind: str  # "layer" or "module"
    finish: Callable[[list[tuple]], Signature]  # graph output dims -> the full signature
    axes: tuple[Axis, ...]  # constraints on the symbolic axes (minimum sizes, strides)
    user_module: nn.Module  # the module the user gave (not the wrapper that is traced)
    input_structure: str | None = None  # forward's nested arguments (InputStructure.to_json)
    not_streamable: str | None = None  # why it cannot stream, when it has states to carry


@dataclasses.dataclass
class WriteJob:
    """What a format's writer is handed (see rnnx/formats.py)."""

    plan: ExportPlan
    signature: Signature
    metadata: Mapping[str, str]  # core.metadata.metadata_props, stored inside the artifact
    directory: Path  # the staging directory
    written: Mapping[str, Path]  # the formats written so far (a derived format reads its base)
    opset: int
    onnx_model: Any = None  # the onnx_ir model, built once (whole models need its output dims)
    chunk: int = 16  # the time steps of a fixed-length format's call (pte)
    max_time: int | None = None  # the most time steps of a dynamic-time format's call (pte)


def dynamic_shapes(
    module: nn.Module,
    inputs: Sequence[TensorSpec],
    constraints: Sequence[Axis] = (),
    *,
    automatic: bool = False,
    maximum: Mapping[str, int] | None = None,
) -> Any:
    """torch.export's `dynamic_shapes` for `module` (forward takes `inputs`, in order): each
    symbolic axis ("batch", "time") one torch.export.Dim, shared by every input that has it;
    an axis of `constraints` takes the sizes minimum + k * multiple (a front end's kernel and
    stride); `automatic`: torch.export.Dim.AUTO for each; `maximum`: only the axes it names are
    symbolic, each up to its maximum, the others take the example's sizes."""
    by_name = {a.name: a for a in constraints}
    dims: dict[str, Any] = {}
    for name in sorted({d for t in inputs for d in t.dims if isinstance(d, str)}):
        axis = by_name.get(name, Axis(name))
        if maximum is not None:
            if name in maximum:
                dims[name] = torch.export.Dim(name, min=axis.min, max=maximum[name])
        elif automatic:  # torch.export's choice, ranges included (the capture routes' second)
            dims[name] = torch.export.Dim.AUTO
        elif axis.multiple == 1:
            dims[name] = torch.export.Dim(name, min=axis.min)
        else:
            steps = torch.export.Dim(f"{name}_steps", min=0)
            dims[name] = axis.multiple * steps + axis.min
    per_input = tuple({axis: dims[d] for axis, d in enumerate(t.dims) if d in dims} for t in inputs)
    # torch.export matches dynamic_shapes to forward's parameters: a forward(*inputs) (the
    # whole-model wrapper) takes them all as its one packed argument.
    parameters = inspect.signature(module.forward).parameters.values()
    packed = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
    return (per_input,) if packed else per_input


class FormatSkipped(RnnxError):
    """A writer found nothing to write for this model (int8 of a GRU); the export goes on."""


def plan_export(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor] | None = None,
    io: ModelIO | None = None,
    *,
    stateless: bool = False,
) -> ExportPlan:
    """What export would trace: the module with the graph's I/O, its example inputs and specs."""
    check_float32(model)
    if isinstance(model, nn.RNNBase) and example_inputs is None:
        return _layer_plan(model, stateless)
    return _module_plan(model, example_inputs, io, stateless)


def _layer_plan(layer: nn.RNNBase, stateless: bool) -> ExportPlan:
    spec = LayerSpec.from_module(layer)
    signature = Signature.for_layer(spec, stateless=stateless)
    example = [torch.from_numpy(a) for a in random_inputs(signature, EXAMPLE_SIZES).values()]
    return ExportPlan(
        module=wrap_layer(layer, stateless=stateless),
        example=example,
        inputs=list(signature.inputs),
        output_names=signature.output_names,
        spec=spec,
        kind="layer",
        finish=lambda dims: signature,
        axes=(),
        user_module=layer,
    )


def _module_plan(
    model: nn.Module, example_inputs: Any, io: ModelIO | None, stateless: bool
) -> ExportPlan:
    if stateless:
        raise RnnxError(
            "--stateless applies to bare layers; a whole model's forward decides its inputs"
        )
    if example_inputs is None:
        if not callable(getattr(model, "example_inputs", None)):
            raise UnsupportedModelError(
                f"{type(model).__name__} is not a bare nn.RNN/LSTM/GRU: give example inputs "
                "(rnnx.export(model, dir, example_inputs=...)) or an example_inputs() method"
            )
        example_inputs = model.example_inputs()
    arguments = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else example_inputs
    leaves, structure = flatten_inputs(model, tuple(arguments))
    module = FlatIO(model, structure)
    example = [leaf.tensor for leaf in leaves]
    outputs: list[torch.Tensor] = []

    def run() -> None:
        with torch.inference_mode():
            outputs.extend(module(*example))

    layers = layers_run(model, run)
    model_io = resolve_io(model, leaves, outputs, io)
    if io is None and getattr(model, "rnnx_io", None) is None:
        model_io = _probed(module, leaves, model_io, layers.batch)
    if len(outputs) != len(model_io.outputs):
        raise UnsupportedModelError(
            f"{type(model).__name__} returns {len(outputs)} tensors but its I/O names "
            f"{len(model_io.outputs)} outputs"
        )
    dtypes = [str(t.dtype).removeprefix("torch.") for t in outputs]
    streaming_reason = not_streamable(model_io, layers.bidirectional)
    is_streamable = streaming_reason is None
    inputs = input_signature(model_io, example)
    return ExportPlan(
        module=module,
        example=example,
        inputs=inputs,
        output_names=list(model_io.outputs),
        spec=None,
        kind="module",
        finish=lambda dims: whole_model_signature(model_io, inputs, dims, dtypes, is_streamable),
        axes=model_io.axes,
        user_module=model,
        input_structure=structure.to_json() if structure else None,
        not_streamable=streaming_reason,
    )


def _probed(
    module: nn.Module, leaves: Sequence[Any], model_io: ModelIO, layer_batch: int | None
) -> ModelIO:
    """Inferred I/O with the data inputs' axes found by running the model (exporter/axes.py)."""
    states = {i for _, i in model_io.state_pairs}
    data = [n for n in model_io.inputs if n not in states and n not in model_io.lengths]
    example = axes.Tensors(tuple(model_io.inputs), tuple(leaf.tensor for leaf in leaves),
                           dict(model_io.dims), frozenset(model_io.lengths))  # fmt: skip
    probed = axes.probe(module, example, data, layer_batch)
    if probed.static:
        return _fixed_shapes(module, example, model_io)
    return dataclasses.replace(
        model_io,
        dims=probed.dims,
        min_sizes={name: minimum for name, (minimum, _) in probed.axes.items() if minimum > 1},
        multiples={name: multiple for name, (_, multiple) in probed.axes.items() if multiple > 1},
    )


def _fixed_shapes(module: nn.Module, example: axes.Tensors, model_io: ModelIO) -> ModelIO:
    """Forward takes no data input at another size (a decoder step written for one sentence,
    `.view(1, 1, -1)`): the artifacts get every axis fixed at the example's size, as the stock
    exporters write them, and the export says so once, naming the line that fails at another
    batch size (the fix, if the user wants a batch axis)."""
    sizes = example.sizes()
    reason = "it fails at every other size"
    if "batch" in sizes:
        try:
            with torch.inference_mode():
                module(*example.resized({**sizes, "batch": sizes["batch"] + 1}))
        except Exception as error:  # the reason, at the user's line
            where = user_frame(error)
            at = f" at {where}" if where else ""
            reason = f"at batch {sizes['batch'] + 1} it fails{at} ({first_line(error, 160)})"
    warn_user(
        f"fixed-shapes: forward takes its inputs at the example's sizes only ({reason}); the "
        "artifacts take exactly the example's shapes; fix, for a batch axis: derive sizes from "
        "the inputs (x.shape[0] instead of a fixed 1 in view/reshape)"
    )
    fixed = {name: (None,) * len(dims) for name, dims in model_io.dims.items()}
    return dataclasses.replace(model_io, dims=fixed, min_sizes={}, multiples={})


def check_float32(model: nn.Module) -> None:
    for name, parameter in model.named_parameters():
        if parameter.dtype != torch.float32:
            raise UnsupportedModelError(
                f"{_defined_at(model)}parameter {name} is {parameter.dtype}; rnnx exports "
                "float32 models (call .float(), and make tensors forward creates float32)"
            )


def _defined_at(model: nn.Module) -> str:
    """`file.py:line: ` of the model's class definition, where a refusal about it points."""
    try:
        path = inspect.getsourcefile(type(model))
        line = inspect.getsourcelines(type(model))[1]
    except (OSError, TypeError):
        return ""
    return f"{Path(path).name}:{line}: " if path else ""
