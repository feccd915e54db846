"""`rnnx doctor`: export hazards in a model, found by running it, each with how to fix it.

Checks, in the order a user should fix them:
- random numbers drawn inside forward (torch.randn initial states: nothing can be verified);
- train-mode behaviour that eval() does not switch off (F.dropout(training=True), a module
  left in training mode);
- Python control flow on tensor values (the trace records one branch);
- a batch or time size baked into forward: the model is run with that axis changed, and the
  axis that breaks it is named.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from rnnx.exporter.signature import sequence_lengths

RANDOM_FUNCTIONS = {
    "randn", "rand", "randint", "randn_like", "rand_like", "randint_like", "randperm",
    "normal", "bernoulli", "multinomial", "poisson", "normal_", "uniform_", "random_",
    "bernoulli_", "exponential_", "geometric_", "cauchy_", "log_normal_",
}  # fmt: skip
DROPOUT_FUNCTIONS = {
    "dropout",
    "alpha_dropout",
    "feature_alpha_dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
}


@dataclasses.dataclass(frozen=True)
class Finding:
    hazard: str  # "random", "train-mode", "control-flow", "frozen-batch", "frozen-time"
    message: str
    fix: str

    def describe(self) -> str:
        return f"{self.hazard}: {self.message}; fix: {self.fix}"


class _CallRecorder(TorchFunctionMode):
    """Records the torch functions forward calls (public API: torch.overrides)."""

    def __init__(self) -> None:
        super().__init__()
        self.random: list[str] = []
        self.dropout_in_training: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        if name in RANDOM_FUNCTIONS:
            self.random.append(name)
        if name in DROPOUT_FUNCTIONS:
            training = kwargs.get("training", args[2] if len(args) > 2 else True)
            probability = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
            if training and probability:
                self.dropout_in_training.append(name)
        return func(*args, **kwargs)


def doctor(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor] | None = None,
    io: Any = None,
) -> list[Finding]:
    """`rnnx.doctor`: the hazards of exporting `model` (a bare layer or a whole model)."""
    from rnnx.exporter.model_io import resolve_io
    from rnnx.exporter.signature import Signature, random_inputs
    from rnnx.exporter.spec import LayerSpec

    findings = []
    was_training = model.training
    if was_training:
        findings.append(Finding(
            "train-mode", f"{type(model).__name__} is in training mode",
            "call model.eval() before exporting (rnnx exports in eval mode, so dropout is off)",
        ))  # fmt: skip
    if isinstance(model, nn.RNNBase) and example_inputs is None:
        from rnnx.exporter.layer_module import wrap_layer

        signature = Signature.for_layer(LayerSpec.from_module(model))
        example = [
            torch.from_numpy(a) for a in random_inputs(signature, {"batch": 2, "time": 5}).values()
        ]
        wrapped = wrap_layer(model, stateless=False)
        dims = {
            t.name: tuple(d if isinstance(d, str) else None for d in t.dims)
            for t in signature.inputs
        }
        try:
            return findings + diagnose(wrapped, example, dims, signature.input_names)
        finally:
            model.train(was_training)  # wrap_layer set eval(); give the module back as it was
    if example_inputs is None:
        example_inputs = model.example_inputs()  # type: ignore[operator]
    example = [example_inputs] if isinstance(example_inputs, torch.Tensor) else list(example_inputs)
    model_io = resolve_io(model, example, io)
    return findings + diagnose(
        model, example, dict(model_io.dims), model_io.inputs, model_io.lengths
    )


def diagnose(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    dims: dict[str, tuple[str | None, ...]] | None = None,
    input_names: Sequence[str] | None = None,
    lengths_inputs: Sequence[str] = (),
) -> list[Finding]:
    """Hazards of exporting `model`, run in eval mode as rnnx exports it."""
    findings: list[Finding] = []
    was_training = model.training
    model.eval()
    try:
        findings += _calls(model, example_inputs)
        findings += _control_flow(model, example_inputs)
        if dims is not None and input_names is not None:
            findings += _frozen_axes(model, example_inputs, dims, input_names, lengths_inputs)
    finally:
        model.train(was_training)
    return findings


def _calls(model: nn.Module, example_inputs: Sequence[torch.Tensor]) -> list[Finding]:
    recorder = _CallRecorder()
    with torch.inference_mode(), recorder:
        model(*example_inputs)
    findings = []
    if recorder.random:
        names = ", ".join(sorted(set(recorder.random)))
        findings.append(Finding(
            "random", f"forward draws random numbers ({names}): outputs differ on every call, "
            "so no exported artifact can be verified",
            "pass initial states as inputs, or start them at zero (torch.zeros / omit hx)",
        ))  # fmt: skip
    if recorder.dropout_in_training:
        findings.append(Finding(
            "train-mode", "forward applies dropout with training=True even in eval mode",
            "use nn.Dropout modules, or pass training=self.training to F.dropout",
        ))  # fmt: skip
    return findings


def _control_flow(model: nn.Module, example_inputs: Sequence[torch.Tensor]) -> list[Finding]:
    """torch.jit.trace warns when a tensor value decides a Python branch or size."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            torch.jit.trace(model, tuple(example_inputs), check_trace=False)
        except Exception:  # tracing problems other than control flow are not this check's
            return []
    # torch's own modules (nn.LSTM checks its hx) raise the same warning: only the user's
    # code counts.
    torch_dir = str(Path(torch.__file__).parent)
    messages = {
        f"{Path(w.filename).name}:{w.lineno}"
        for w in caught
        if issubclass(w.category, torch.jit.TracerWarning)
        and not w.filename.startswith(torch_dir)
        and any(k in str(w.message) for k in ("Python boolean", "Python number", "Python index"))
    }
    if not messages:
        return []
    return [Finding(
        "control-flow", f"Python control flow depends on tensor values (at {sorted(messages)[0]}): "
        "the exported graph keeps only the branch taken for the example",
        "compute both branches with torch.where, or move the decision out of forward",
    )]  # fmt: skip


def _frozen_axes(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    dims: dict[str, tuple[str | None, ...]],
    input_names: Sequence[str],
    lengths_inputs: Sequence[str] = (),
) -> list[Finding]:
    """Run forward with one symbolic axis changed at a time; name the axis that breaks it."""
    findings = []
    for axis_name in ("batch", "time"):
        if not any(axis_name in dims.get(n, ()) for n in input_names):
            continue
        size = next(
            t.shape[dims[n].index(axis_name)]
            for n, t in zip(input_names, example_inputs) if axis_name in dims.get(n, ())
        )  # fmt: skip
        for other in sorted({1, size + 1} - {size}):
            changed = [
                _resize(t, dims.get(n, ()), axis_name, other)
                for n, t in zip(input_names, example_inputs)
            ]
            for index, name in enumerate(input_names):
                if name in lengths_inputs:  # valid lengths for the new batch and time
                    new_sizes = {**_sizes(example_inputs, dims, input_names), axis_name: other}
                    changed[index] = torch.from_numpy(
                        sequence_lengths(new_sizes["batch"], new_sizes.get("time", 1))
                    )
            try:
                with torch.inference_mode():
                    model(*changed)
            except Exception as error:
                reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
                works, fails = f"{axis_name} {size}", f"{axis_name} {other}"
                findings.append(Finding(
                    f"frozen-{axis_name}",
                    f"forward works at {works} but fails at {fails} ({reason})",
                    f"derive sizes from the inputs (x.shape) instead of a fixed {axis_name} size",
                ))  # fmt: skip
                break
    return findings


def _sizes(example_inputs, dims, input_names) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for name, tensor in zip(input_names, example_inputs):
        for axis, axis_name in enumerate(dims.get(name, ())):
            if axis_name:
                sizes.setdefault(axis_name, int(tensor.shape[axis]))
    return sizes


def _resize(
    tensor: torch.Tensor, axes: tuple[str | None, ...], axis_name: str, size: int
) -> torch.Tensor:
    if axis_name not in axes:
        return tensor
    axis = axes.index(axis_name)
    repeats = -(-size // tensor.shape[axis])
    grown = torch.cat([tensor] * repeats, dim=axis) if repeats > 1 else tensor
    return grown.narrow(axis, 0, size)
