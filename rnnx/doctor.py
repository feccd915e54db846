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
import linecache
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from rnnx.core.errors import first_line
from rnnx.core.quiet import torch_kernel_notices
from rnnx.core.signature import (
    Axis,
    Signature,
    random_inputs,
    time_layout,
)
from rnnx.exporter import axes
from rnnx.exporter.plan import ExportPlan, plan_export
from rnnx.runtimes.streaming import assemble_chunks, stream_in_chunks
from rnnx.runtimes.torch_session import EagerSession

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
    # "random", "train-mode", "control-flow", "frozen-batch", "frozen-time", "not-streamable"
    hazard: str
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
    """`rnnx.doctor`: the hazards of exporting `model` (a bare layer, or a whole model with
    example inputs or an `example_inputs()` method); the same checks as export's pre-flight."""
    was_training = model.training
    model.eval()
    try:
        # The checks run the model: torch's notice about its CPU kernel is not a hazard.
        with torch_kernel_notices():
            return check_plan(plan_export(model, example_inputs, io), was_training)
    finally:
        model.train(was_training)


def check_plan(plan: ExportPlan, was_training: bool) -> list[Finding]:
    """Hazards of an export plan (its module is in eval mode, as rnnx exports it)."""
    findings: list[Finding] = []
    if was_training:
        findings.append(Finding(
            "train-mode", "the model is in training mode",
            "rnnx exports it in eval mode (dropout off); call model.eval() first",
        ))  # fmt: skip
    findings += _calls(plan.module, plan.example)
    findings += _control_flow(plan.module, plan.example)
    findings += _frozen_axes(plan)
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


# A line that only checks shapes (`assert h == 1`, `if x.shape[1] < field:`): tracing warns
# about it like about a branch on values, but the graph does not depend on it.
_SHAPE_CHECK = re.compile(
    r"^\s*(assert\b|if\s+[\w.\[\]]*(\.shape\b|\.size\(|\.dim\(\)|len\()[\w.\[\]()]*"
    r"\s*(==|!=|<=|>=|<|>)\s*[\w.]+\s*:)"
)


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
        and not _SHAPE_CHECK.match(linecache.getline(w.filename, w.lineno))
    }
    if not messages:
        return []
    return [Finding(
        "control-flow", f"Python control flow depends on tensor values (at {sorted(messages)[0]}): "
        "the exported graph keeps only the branch taken for the example",
        "compute both branches with torch.where, or move the decision out of forward",
    )]  # fmt: skip


def _frozen_axes(plan: ExportPlan) -> list[Finding]:
    """Run forward with one symbolic axis changed at a time; name the axis that breaks it."""
    example = axes.Tensors.of(plan.inputs, plan.example)
    sizes = example.sizes()
    constraints = {a.name: a for a in plan.axes}
    findings = []
    for axis_name, size in sizes.items():
        axis = constraints.get(axis_name, Axis(axis_name))
        for other in sorted({axis.fit(1), axis.fit(size + 1)} - {size}):
            changed = example.resized({**sizes, axis_name: other})
            try:
                with torch.inference_mode():
                    plan.module(*changed)
            except Exception as error:
                reason = first_line(error, 200)
                works, fails = f"{axis_name} {size}", f"{axis_name} {other}"
                findings.append(Finding(
                    f"frozen-{axis_name}",
                    f"forward works at {works} but fails at {fails} ({reason})",
                    f"derive sizes from the inputs (x.shape) instead of a fixed {axis_name} size",
                ))  # fmt: skip
                break
    return findings


# A sequence the streaming check runs whole and in chunks; 7 = 3 + 3 + 1 also covers a
# chunk of one step.
_STREAM_PROBE = {"batch": 2, "time": 7}
_STREAM_CHUNK = 3


def check_streaming(module: nn.Module, signature: Signature) -> tuple[Signature, list[Finding]]:
    """Can the exported model stream? Run the eager module whole and in chunks (states
    carried) and compare.

    A front end that sees several steps at once (a convolution over time), or any look-ahead,
    makes chunks differ from the whole sequence: such a model is marked not streamable rather
    than streamed wrong. The same run tells how a derived output axis such as `time*batch`
    (`out.view(-1, n)`) is laid out, which the signature then spells in memory order.
    """
    carried = {o for o, _ in signature.state_pairs}
    per_step = [t for t in signature.outputs
                if t.name not in carried and any(time_layout(d) for d in t.dims)]  # fmt: skip
    timed = [any(time_layout(d) for d in t.dims) for t in signature.data_inputs]
    if not signature.streamable or not any(timed) or (not per_step and not all(timed)):
        # nothing to chunk: a step model (a decoder step attending over a memory that has a
        # time axis of its own included) is streamed a step per call
        return signature, []
    eager = EagerSession(module, signature)
    probe = signature.fit(_STREAM_PROBE)
    feeds = random_inputs(signature, probe, seed=7)
    batch = probe["batch"]
    try:
        whole = eager.run(feeds)
        pieces, _ = stream_in_chunks(eager, feeds, _STREAM_CHUNK)
    except Exception as error:  # a chunk too short for the model is a reason not to stream
        return _not_streamable(signature, f"it fails on a chunk of {_STREAM_CHUNK} steps "
                               f"({first_line(error, 200)})")  # fmt: skip
    outputs = []
    for tensor in signature.outputs:
        if tensor.name not in pieces[0]:  # a final state: carried, not assembled
            outputs.append(tensor)
            continue
        chunks = [p[tensor.name] for p in pieces]
        for dims in _layouts(tensor.dims):
            if np.allclose(assemble_chunks(dims, chunks, batch), whole[tensor.name],
                           rtol=1e-4, atol=1e-5):  # fmt: skip
                outputs.append(dataclasses.replace(tensor, dims=dims))
                break
        else:
            return _not_streamable(
                signature, f"output {tensor.name!r} streamed in chunks of {_STREAM_CHUNK} "
                "steps differs from the whole sequence (a front end or layer that sees "
                "several time steps at once)",
            )  # fmt: skip
    return dataclasses.replace(signature, outputs=tuple(outputs)), []


def _layouts(dims: tuple) -> list[tuple]:
    """The dims as given, and with a flattened (time, batch) axis in the other memory order."""
    for axis, dim in enumerate(dims):
        layout = time_layout(dim)
        if layout and len(layout) > 1:
            other = "*".join(reversed(layout))
            return [dims, (*dims[:axis], other, *dims[axis + 1 :])]
    return [dims]


def _not_streamable(signature: Signature, reason: str) -> tuple[Signature, list[Finding]]:
    finding = Finding(
        "not-streamable", f"the model cannot stream: {reason}",
        "it is exported for whole sequences (session.run); to stream, carry the front end's "
        "context in state or make it causal",
    )  # fmt: skip
    return dataclasses.replace(signature, streamable=False), [finding]
