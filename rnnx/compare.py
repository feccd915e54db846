"""Parity of sessions against the eager PyTorch session, at shapes other than the export example.

The comparator is handed the sessions it compares (as Polygraphy's Comparator.run is handed its
runners): it opens nothing itself. Every session runs on the same fresh random inputs as the
eager one: batch 1, an odd batch, time 1 and a long sequence, each with zero and with random
initial states. An output passes when |actual - expected| <= atol + rtol * |expected| holds
elementwise (numpy.isclose); the report keeps the max absolute and max relative error of every
output, pass or fail.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnnx.core.errors import RnnxError, first_line
from rnnx.core.signature import random_inputs
from rnnx.exporter.diagnose import raised_at, user_frame
from rnnx.runtimes.base import Session
from rnnx.runtimes.streaming import run_in_chunks

# (batch, time) pairs: batch 1, time 1, an odd batch, a long sequence; none is the example.
DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((1, 1), (3, 7), (1, 100), (4, 1), (5, 23))
# Streaming check: a (batch, time) sequence fed in chunks of these sizes (the last chunk is
# shorter when the size does not divide the time).
STREAM_SIZE = (3, 23)
STREAM_CHUNKS = (1, 3, 17)


# Reduced-precision formats are checked with their own, documented tolerance class (a format's
# `tolerance` in rnnx/formats.py).
# int8 (8-bit weights; 8-bit activations with one scale per tensor and call: exporter/quantize.py)
# errs on unit-scale inputs, measured here, at zero state over batch 1 × 100 (the benchmark's
# measure) by 2.1e-4 (LSTM 1024 proj 256), 9.3e-4 (LSTM 2×256), 2.5e-3 (GRU 2×256) and 8.2e-3
# (tanh RNN 2×256: its recurrence alone in int8 errs by 6e-3), and at the verifier's random N(0, 1)
# initial states, which widen the first steps' activation range, by up to 1.3e-2 (GRU 2×256),
# 1.9e-2 (tanh RNN 2×256) and 2.8e-2 (3-layer ReLU RNN, outputs above 1): atol = rtol = 2e-2.
# bf16 keeps 8 bits of mantissa: OpenVINO bf16 errs by 2.7e-3 (projected LSTMs) to 1.3e-2
# (GRU, deep ReLU RNN stacks) here, over the verifier's cases (benchmarks/precision_errors.py;
# the table is in docs/runtimes.md), so 3e-2 leaves twice the worst measured. f16 keeps 11 bits (not
# measured: this CPU has no f16).
REDUCED_PRECISION = (("int8", 2e-2, 2e-2), ("bf16", 3e-2, 3e-2), ("f16", 1e-2, 1e-2))


@dataclasses.dataclass(frozen=True)
class VerifyOptions:
    atol: float = 1e-5  # the "fp32" tolerance class
    rtol: float = 1e-4
    # (class, atol, rtol) of the other tolerance classes
    reduced_precision: tuple[tuple[str, float, float], ...] = REDUCED_PRECISION
    sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES
    stream_chunks: tuple[int, ...] = STREAM_CHUNKS  # () skips the streaming check
    seed: int = 0

    def tolerance(self, tolerance_class: str) -> tuple[float, float]:
        if tolerance_class == "fp32":
            return self.atol, self.rtol
        for name, atol, rtol in self.reduced_precision:
            if name == tolerance_class:
                return atol, rtol
        raise RnnxError(f"no tolerance given for the {tolerance_class!r} class")


@dataclasses.dataclass(frozen=True)
class OutputCheck:
    artifact: str
    batch: int | None  # None: the model fixes this axis (core/signature.py: Signature.labels)
    time: int | None
    initial_state: str  # "zero", "random" or "none" (stateless)
    output: str
    max_abs_error: float
    max_rel_error: float
    passed: bool | None  # None: skipped (see `skipped`), neither a pass nor a failure
    chunk: int | None = None  # streamed in chunks of this many steps; None: whole sequence
    error: str | None = None  # the run itself failed (the model raised), with the reason
    skipped: str | None = None  # why the check could not be made (eager itself raises)

    def describe(self) -> str:
        streamed = f", streamed in chunks of {self.chunk}" if self.chunk else ""
        sizes = [f"{axis} {size}" for axis, size in (("batch", self.batch), ("time", self.time))
                 if size is not None]  # fmt: skip
        where = f"at {', '.join(sizes) or 'its fixed shapes'}, {self.initial_state} state{streamed}"
        if self.skipped:
            return f"{self.artifact} check {where} skipped: {self.skipped}"
        if self.error:
            return f"{self.artifact} fails {where}: {self.error}"
        return (
            f"{self.artifact} output {self.output!r} {where}: max abs error "
            f"{self.max_abs_error:.3g}, max rel error {self.max_rel_error:.3g}"
        )


@dataclasses.dataclass
class VerificationReport:
    atol: float
    rtol: float
    checks: list[OutputCheck]
    # tolerance class -> (atol, rtol), for the classes other than fp32 that were checked
    reduced_precision: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    # where the artifacts ran: CPU class, flags, runtime versions (core/machine.py), set by
    # whoever opened the sessions (the comparator does not know if they were emulated)
    machine: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        """Every check made passed, and some were made (a skipped check is neither)."""
        return any(c.passed for c in self.checks) and all(
            c.passed is not False for c in self.checks
        )

    def passed_labels(self) -> list[str]:
        """The artifacts (session labels) whose checks all passed (skipped ones aside)."""
        return sorted(a for a in {c.artifact for c in self.checks} if self.artifact_passed(a))

    def artifact_passed(self, artifact: str) -> bool:
        """The checks of one artifact (streamed ones included) all passed, and some were made."""
        own = [c for c in self.checks if c.artifact == artifact]
        return any(c.passed for c in own) and all(c.passed is not False for c in own)

    def first_failure(self, artifact: str | None = None) -> str:
        """The first failed check (of `artifact`, or of eager itself at the same inputs)."""
        failed = [c for c in self.checks if c.passed is False
                  and (artifact is None or c.artifact in (artifact, "eager"))]  # fmt: skip
        return failed[0].describe() if failed else "no failure"

    def only(self, artifacts: Any) -> VerificationReport:
        """The report of some artifacts (those an export keeps)."""
        kept = set(artifacts)
        checks = [c for c in self.checks if c.artifact in kept]
        return dataclasses.replace(self, checks=checks)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per artifact: worst errors over every case and output; skipped checks (with their
        reasons) counted apart, as neither a pass nor a failure."""
        result: dict[str, dict[str, Any]] = {}
        for check in self.checks:
            key = f"{check.artifact} streamed" if check.chunk else check.artifact
            row = result.setdefault(
                key,
                {"max_abs_error": 0.0, "max_rel_error": 0.0, "passed": True, "cases": 0},
            )
            if check.passed is None:
                row.setdefault("skipped", [])
                if check.skipped not in row["skipped"]:
                    row["skipped"].append(check.skipped)
                continue
            row["max_abs_error"] = max(row["max_abs_error"], check.max_abs_error)
            row["max_rel_error"] = max(row["max_rel_error"], check.max_rel_error)
            row["passed"] = row["passed"] and check.passed
            row["cases"] += 1
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "atol": self.atol,
            "rtol": self.rtol,
            "reduced_precision": {k: list(v) for k, v in self.reduced_precision.items()},
            "summary": self.summary(),
            "machine": self.machine,
            "checks": [dataclasses.asdict(c) for c in self.checks],
        }


def compare(
    sessions: Mapping[str, Session],
    reference: Session,
    options: VerifyOptions = VerifyOptions(),
    tolerance_classes: Mapping[str, str] = {},
) -> VerificationReport:
    """Compare each session (by artifact name) with the eager `reference` session.

    `tolerance_classes` names each artifact's tolerance class (VerifyOptions.tolerance); fp32
    for those not named.
    """
    eager = reference
    signature = eager.signature
    tolerances = {a: options.tolerance(tolerance_classes.get(a, "fp32")) for a in sessions}
    state_cases = ("zero", "random") if signature.state_pairs else ("none",)
    checks = []
    for case, requested in enumerate(options.sizes):
        # Each artifact at the sizes it takes: moved up to the model's minimum length and
        # stride, and down within the artifact's own limits (a pte program's --max-time).
        groups: dict[tuple[int, int], list[str]] = {}
        for fmt, session in sessions.items():
            fitted = signature.fit({"batch": requested[0], "time": requested[1]}, session.limits)
            groups.setdefault((fitted["batch"], fitted["time"]), []).append(fmt)
        for (batch, time), formats in groups.items():
            for state in state_cases:
                sizes, zero = {"batch": batch, "time": time}, state == "zero"
                feeds = random_inputs(signature, sizes, seed=options.seed + case, zero_state=zero)
                where = dict(**signature.labels(sizes), initial_state=state)
                expected, failure = _attempt(eager.run, feeds, artifact="eager", **where)
                if failure:
                    checks.append(failure)
                    continue
                for fmt in formats:
                    actual, failure = _attempt(sessions[fmt].run, feeds, artifact=fmt, **where)
                    if failure:
                        checks.append(failure)
                        continue
                    for name in signature.output_names:
                        checks.append(_compare(actual[name], expected[name], tolerances[fmt],
                                               artifact=fmt, output=name, **where))  # fmt: skip
    # Step models (no time axis) are streamed one call per step by design; nothing to chunk.
    if signature.streamable and all("time" in t.dims for t in signature.data_inputs):
        for fmt, session in sessions.items():
            checks += _stream_checks(fmt, session, eager, tolerances[fmt], options)
    for fmt, session in sessions.items():
        exact = tolerance_classes.get(fmt, "fp32") == "fp32"
        checks += _non_finite_checks(fmt, session, eager, tolerances[fmt], exact, options)
    reduced = {c: options.tolerance(c) for c in set(tolerance_classes.values()) if c != "fp32"}
    return VerificationReport(options.atol, options.rtol, checks, reduced)


def _stream_checks(
    artifact: str,
    session: Session,
    eager: Session,
    tolerance: tuple[float, float],
    options: VerifyOptions,
) -> list[OutputCheck]:
    """Feed one sequence chunk by chunk through a Stream; compare with eager on all of it.

    A chunked run that raises is a failed check naming the reason, like any other case.
    """
    signature = eager.signature
    fitted = signature.fit({"batch": STREAM_SIZE[0], "time": STREAM_SIZE[1]}, session.limits)
    feeds = random_inputs(signature, fitted, seed=options.seed + 99)
    where = dict(**signature.labels(fitted), initial_state="random")
    expected, failure = _attempt(eager.run, feeds, artifact="eager", **where)
    if failure:
        return [failure]
    checks = []
    for chunk in options.stream_chunks:
        actual, failure = _attempt(
            lambda f, c=chunk: run_in_chunks(session, f, c), feeds, artifact=artifact,
            chunk=chunk, **where,
        )  # fmt: skip
        if failure:
            checks.append(failure)
            continue
        for name in signature.output_names:
            checks.append(_compare(actual[name], expected[name], tolerance, artifact=artifact,
                                   output=name, chunk=chunk, **where))  # fmt: skip
    return checks


# The NaN check: one NaN in the first sequence of the batch, at this step.
NAN_SIZE = (2, 5)
NAN_STEP = 2


def _non_finite_checks(
    artifact: str,
    session: Session,
    eager: Session,
    tolerance: tuple[float, float],
    exact: bool,
    options: VerifyOptions,
) -> list[OutputCheck]:
    """A NaN in one sequence's input: eager PyTorch gives that sequence NaN outputs and states
    and leaves the others alone; so must the artifact (some kernels hide a NaN).

    Checked per sequence: the same sequences hold NaN, and the others match within tolerance.
    """
    signature = eager.signature
    target = next((t for t in signature.data_inputs if t.dtype == "float32"
                   and "batch" in t.dims and "time" in t.dims), None)  # fmt: skip
    if target is None:
        return []
    sizes = signature.fit({"batch": NAN_SIZE[0], "time": NAN_SIZE[1]}, session.limits)
    feeds = random_inputs(signature, sizes, seed=options.seed + 7, zero_state=True)
    where: list[Any] = [slice(None)] * len(target.dims)
    where[target.dims.index("batch")] = 0
    where[target.dims.index("time")] = min(NAN_STEP, sizes["time"] - 1)
    feeds[target.name][tuple(where)] = np.nan
    case = dict(batch=sizes["batch"], time=sizes["time"], initial_state="nan-input")
    try:
        expected = eager.run(feeds)
    except Exception as error:  # a check on values in forward (assert torch.isfinite(x).all())
        # Eager has no answer to compare with: the check is skipped, and says why (the NaN, or
        # a size the model does not take, as a batch of 1 built into its forward).
        clean = random_inputs(signature, sizes, seed=options.seed + 7, zero_state=True)
        _, clean_failure = _attempt(eager.run, clean, artifact="eager", **case)
        why = "on NaN input" if clean_failure is None else f"at batch {sizes['batch']}"
        return [OutputCheck(**case, artifact=artifact, output="*", max_abs_error=0.0,
                            max_rel_error=0.0, passed=None,
                            skipped=f"eager raises {why} ({raised_at(error)})")]  # fmt: skip
    actual, failure = _attempt(session.run, feeds, artifact=artifact, **case)
    if failure:
        return [failure]
    # A reduced-precision artifact computes the clean sequences with other numbers once the
    # batch holds a NaN (dynamic int8 takes one scale for the whole batch): only where the NaN
    # goes is checked for it.
    return [_nan_check(tensor, expected[tensor.name], actual[tensor.name], tolerance, exact,
                       artifact=artifact, output=tensor.name, **case)
            for tensor in signature.outputs]  # fmt: skip


def _nan_check(
    tensor: Any,
    want: np.ndarray,
    got: np.ndarray,
    tolerance: tuple[float, float],
    exact: bool,
    **where: Any,
) -> OutputCheck:
    """Per sequence (along the batch axis): NaN in the same sequences, the others close."""
    axis = tensor.dims.index("batch") if "batch" in tensor.dims else None
    if axis is None or want.shape != got.shape:
        pairs = [(want, got)]
    else:
        pairs = [(np.take(want, b, axis), np.take(got, b, axis)) for b in range(want.shape[axis])]
    same = all(bool(np.isnan(w).any()) == bool(np.isnan(g).any()) for w, g in pairs)
    clean = [(w.ravel(), g.ravel()) for w, g in pairs if not np.isnan(w).any()]
    flat = [np.concatenate(side) if side else np.zeros(0, np.float32) for side in zip(*clean)]
    check = _compare(flat[1], flat[0], tolerance, **where) if clean and exact else None
    passed = same and (check is None or check.passed)
    return OutputCheck(
        **where,
        max_abs_error=check.max_abs_error if check else 0.0,
        max_rel_error=check.max_rel_error if check else 0.0,
        passed=passed,
        error=None if same else "a NaN in one sequence's input does not give NaN to it alone",
    )


def _attempt(run: Any, feeds: dict, **where: Any) -> tuple[Any, OutputCheck | None]:
    """Run; a model that raises is a failed check naming the reason, not a crash."""
    try:
        return run(feeds), None
    except Exception as error:  # recorded in the report, never swallowed
        line = user_frame(error)  # a traced module quotes the user's line it failed at
        reason = first_line(error, 300) + (f" (at {line})" if line else "")
        check = OutputCheck(**where, output="*", max_abs_error=float("inf"),
                            max_rel_error=float("inf"), passed=False, error=reason)  # fmt: skip
        return None, check


def _compare(
    actual: np.ndarray, expected: np.ndarray, tolerance: tuple[float, float], **where: Any
) -> OutputCheck:
    if actual.shape != expected.shape:
        return OutputCheck(
            **where, max_abs_error=float("inf"), max_rel_error=float("inf"), passed=False
        )
    error = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    magnitude = np.abs(expected.astype(np.float64))
    max_abs = float(error.max(initial=0.0))
    max_rel = float((error / np.maximum(magnitude, np.finfo(np.float32).tiny)).max(initial=0.0))
    atol, rtol = tolerance
    passed = bool(np.all(error <= atol + rtol * magnitude)) and np.isfinite(actual).all()
    return OutputCheck(**where, max_abs_error=max_abs, max_rel_error=max_rel, passed=bool(passed))
