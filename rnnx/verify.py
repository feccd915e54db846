"""Parity of exported artifacts against eager PyTorch, at shapes other than the export example.

Every artifact runs on the same fresh random inputs as the eager module: batch 1, an odd
batch, time 1 and a long sequence, each with zero and with random initial states. An output
passes when |actual - expected| <= atol + rtol * |expected| holds elementwise (numpy.isclose);
the report keeps the max absolute and max relative error of every output, pass or fail.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnx.errors import RnnxError
from rnnx.exporter.signature import Signature, random_inputs

# (batch, time) pairs: batch 1, time 1, an odd batch, a long sequence; none is the example.
DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((1, 1), (3, 7), (1, 100), (4, 1), (5, 23))
# Streaming check: a (batch, time) sequence fed in chunks of these sizes (the last chunk is
# shorter when the size does not divide the time).
STREAM_SIZE = (3, 23)
STREAM_CHUNKS = (1, 3, 17)


# int8 models are checked with their own, documented tolerance: dynamic quantization rounds
# weights and activations to 8 bits, so errors of ~1e-3 on unit-scale inputs are expected.
INT8_ATOL = 1e-2
INT8_RTOL = 1e-2


@dataclasses.dataclass(frozen=True)
class VerifyOptions:
    atol: float = 1e-5
    rtol: float = 1e-4
    int8_atol: float = INT8_ATOL
    int8_rtol: float = INT8_RTOL
    sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES
    stream_chunks: tuple[int, ...] = STREAM_CHUNKS  # () skips the streaming check
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class OutputCheck:
    artifact: str
    batch: int
    time: int
    initial_state: str  # "zero", "random" or "none" (stateless)
    output: str
    max_abs_error: float
    max_rel_error: float
    passed: bool
    chunk: int | None = None  # streamed in chunks of this many steps; None: whole sequence
    error: str | None = None  # the run itself failed (the model raised), with the reason

    def describe(self) -> str:
        streamed = f", streamed in chunks of {self.chunk}" if self.chunk else ""
        where = f"at batch {self.batch}, time {self.time}, {self.initial_state} state{streamed}"
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

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def first_failure(self) -> str:
        failed = [c for c in self.checks if not c.passed]
        return failed[0].describe() if failed else "no failure"

    def summary(self) -> dict[str, dict[str, float]]:
        """Per artifact: worst errors over every case and output."""
        result: dict[str, dict[str, Any]] = {}
        for check in self.checks:
            key = f"{check.artifact} streamed" if check.chunk else check.artifact
            row = result.setdefault(
                key,
                {"max_abs_error": 0.0, "max_rel_error": 0.0, "passed": True, "cases": 0},
            )
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
            "summary": self.summary(),
            "checks": [dataclasses.asdict(c) for c in self.checks],
        }


def verify_artifacts(
    artifacts: Mapping[str, str | os.PathLike],
    reference: Any,
    signature: Signature,
    options: VerifyOptions = VerifyOptions(),
) -> VerificationReport:
    """Compare each artifact ("onnx", "torchscript") with the eager `reference` module."""
    from rnnx.runtimes.onnxruntime_session import OnnxRuntimeSession
    from rnnx.runtimes.torch_session import EagerSession, TorchScriptSession

    eager = EagerSession(reference, signature)
    openers = {
        "onnx": OnnxRuntimeSession,
        "onnx_int8": OnnxRuntimeSession,
        "torchscript": TorchScriptSession,
    }
    sessions = {fmt: openers[fmt](path, signature) for fmt, path in artifacts.items()}
    state_cases = ("zero", "random") if signature.state_pairs else ("none",)
    checks = []
    for case, (batch, time) in enumerate(options.sizes):
        for state in state_cases:
            feeds = random_inputs(
                signature,
                {"batch": batch, "time": time},
                seed=options.seed + case,
                zero_state=state == "zero",
            )
            where = dict(batch=batch, time=time, initial_state=state)
            expected, failure = _attempt(eager.run, feeds, artifact="eager", **where)
            if failure:
                checks.append(failure)
                continue
            for fmt, session in sessions.items():
                actual, failure = _attempt(session.run, feeds, artifact=fmt, **where)
                if failure:
                    checks.append(failure)
                    continue
                for name in signature.output_names:
                    checks.append(
                        _compare(
                            actual[name],
                            expected[name],
                            options,
                            artifact=fmt,
                            batch=batch,
                            time=time,
                            initial_state=state,
                            output=name,
                        )
                    )
    # Step models (no time axis) are streamed one call per step by design; nothing to chunk.
    if signature.streamable and all("time" in t.dims for t in signature.data_inputs):
        for fmt, session in sessions.items():
            checks += _stream_checks(fmt, session, eager, signature, options)
    return VerificationReport(options.atol, options.rtol, checks)


def _stream_checks(
    artifact: str, session: Any, eager: Any, signature: Signature, options: VerifyOptions
) -> list[OutputCheck]:
    """Feed one sequence chunk by chunk through a Stream; compare with eager on all of it."""
    from rnnx.runtimes.streaming import run_in_chunks

    batch, time = STREAM_SIZE
    feeds = random_inputs(signature, {"batch": batch, "time": time}, seed=options.seed + 99)
    expected = eager.run(feeds)
    checks = []
    for chunk in options.stream_chunks:
        actual = run_in_chunks(session, feeds, chunk)
        for name in signature.output_names:
            checks.append(
                _compare(actual[name], expected[name], options, artifact=artifact, batch=batch,
                         time=time, initial_state="random", output=name, chunk=chunk)
            )  # fmt: skip
    return checks


def _attempt(run: Any, feeds: dict, **where: Any) -> tuple[Any, OutputCheck | None]:
    """Run; a model that raises is a failed check naming the reason, not a crash."""
    try:
        return run(feeds), None
    except Exception as error:  # recorded in the report, never swallowed
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        check = OutputCheck(**where, output="*", max_abs_error=float("inf"),
                            max_rel_error=float("inf"), passed=False, error=reason)  # fmt: skip
        return None, check


def _compare(
    actual: np.ndarray, expected: np.ndarray, options: VerifyOptions, **where: Any
) -> OutputCheck:
    if actual.shape != expected.shape:
        return OutputCheck(
            **where, max_abs_error=float("inf"), max_rel_error=float("inf"), passed=False
        )
    error = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    magnitude = np.abs(expected.astype(np.float64))
    max_abs = float(error.max(initial=0.0))
    max_rel = float((error / np.maximum(magnitude, np.finfo(np.float32).tiny)).max(initial=0.0))
    int8 = str(where.get("artifact", "")).endswith("_int8")
    atol, rtol = (options.int8_atol, options.int8_rtol) if int8 else (options.atol, options.rtol)
    passed = bool(np.all(error <= atol + rtol * magnitude)) and np.isfinite(actual).all()
    return OutputCheck(**where, max_abs_error=max_abs, max_rel_error=max_rel, passed=bool(passed))


def verify(
    export_dir: str | os.PathLike,
    reference: Any = None,
    options: VerifyOptions = VerifyOptions(),
    *,
    checkpoint: str | os.PathLike | None = None,
) -> VerificationReport:
    """Verify every artifact in an export directory.

    The eager reference is `reference` if given, else rebuilt from the checkpoint recorded in
    the manifest (or `checkpoint`, if the file has moved since export).
    """
    from rnnx.exporter.manifest import artifact_paths, manifest_signature, read_manifest
    from rnnx.exporter.model_io import reference_module

    manifest = read_manifest(export_dir)
    if reference is None:
        source = manifest.get("source")
        if checkpoint is not None:
            source = {**(source or {}), "path": str(Path(checkpoint).resolve()), "sha256": None}
        if not source:
            raise RnnxError(
                f"'{export_dir}' was exported from an in-memory model: pass the model to verify "
                "(rnnx.verify(dir, model)) or a checkpoint (--checkpoint)"
            )
        from rnnx.exporter.checkpoint import load_module_from_source

        reference = load_module_from_source(source)
    reference = reference_module(manifest, reference)
    paths = artifact_paths(export_dir, manifest)
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise RnnxError(f"artifact '{missing[0]}' listed in the manifest is missing")
    return verify_artifacts(paths, reference, manifest_signature(manifest), options)
