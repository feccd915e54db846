"""`rnnx tune`: the fastest verified way to run an export on this machine, per shape.

Every runtime, format and precision this export and machine have is first verified against
eager PyTorch (each precision with its own tolerance): a fast path that computes something else
is no candidate. The verified ones are then measured side by side (`rnnx bench`), and the
fastest for each (batch, time) is recorded in the manifest, where `rnnx.load(dir, "auto",
batch=N)` finds it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from rnnx.benchmark import BenchOptions, BenchRow, Target, available_targets, bench, check_counts
from rnnx.compare import VerifyOptions
from rnnx.core.errors import RnnxError
from rnnx.core.manifest import MANIFEST, read_manifest, write_json
from rnnx.pipeline import verify


@dataclasses.dataclass(frozen=True)
class TuneOptions:
    batches: tuple[int, ...] = (1,)
    times: tuple[int, ...] = (100,)
    threads: tuple[int, ...] = (1,)
    repeats: int = 20
    verify_options: VerifyOptions = VerifyOptions()
    trust: Any = None  # LoadOptions (--model, --trust-checkpoint) for the eager reference

    def __post_init__(self) -> None:
        check_counts({"--repeats": self.repeats, "--batch": self.batches, "--time": self.times},
                     threads=self.threads)  # fmt: skip


@dataclasses.dataclass
class TuneResult:
    rows: list[BenchRow]  # every verified candidate at every shape
    rejected: dict[str, str]  # candidate -> why verification refused it
    choices: list[dict[str, Any]]  # the fastest per (batch, time, threads), as recorded


def verified_targets(
    export_dir: str | os.PathLike, verify_options: VerifyOptions = VerifyOptions(),
    trust: Any = None,
) -> tuple[list[Target], dict[str, str]]:  # fmt: skip
    """The targets rnnx.load can open for this export that pass verification against eager,
    and, for the others, why not."""
    candidates, rejected = [], {}
    for target in available_targets(read_manifest(export_dir)):
        if target.format is None or target.runtime.runner is not None:
            continue  # the reference itself, and C++ runners (not opened by rnnx.load)
        try:
            # recorded in verified_on: what passes here need not warn when rnnx.load opens it
            report = verify(export_dir, options=verify_options, trust=trust, record=True,
                            runtime=target.runtime.name, **target.options)  # fmt: skip
        except RnnxError as error:  # a runtime that refuses this model or option
            rejected[target.name] = str(error)
            continue
        if report.passed:
            candidates.append(target)
        else:
            rejected[target.name] = report.first_failure()
    return candidates, rejected


def tune(export_dir: str | os.PathLike, options: TuneOptions = TuneOptions()) -> TuneResult:
    candidates, rejected = verified_targets(export_dir, options.verify_options, options.trust)
    if not candidates:
        raise RnnxError(f"no runtime passes verification for '{export_dir}': {rejected}")
    bench_options = BenchOptions(
        runtimes=("eager", *(t.name for t in candidates)),
        batches=options.batches,
        times=options.times,
        threads=options.threads,
        repeats=options.repeats,
        trust=options.trust,
    )
    by_name = {t.name: t for t in candidates}
    # the rows of what rnnx.load can open (not bench's "(js)" rows: the web and node runtimes
    # timed inside JavaScript, which a Python caller does not get)
    rows = [r for r in bench(export_dir, bench_options) if r.runtime in ("eager", *by_name)]
    choices = []
    for shape in sorted({(r.batch, r.time, r.threads) for r in rows}):
        measured = [r for r in rows
                    if (r.batch, r.time, r.threads) == shape and r.runtime in by_name]  # fmt: skip
        best = min(measured, key=lambda r: r.p50_ms)
        target: Target = by_name[best.runtime]
        # A fixed-shape export (its rows have no batch or time) runs its one shape whatever
        # batch is asked for: its record says 1, the smallest the tuning contract takes.
        choices.append({
            "batch": shape[0] or 1, "time": shape[1] or 1, "threads": shape[2],
            "target": target.name,
            "runtime": target.runtime.name, "options": target.options,
            "p50_ms": best.p50_ms, "ratio_to_eager": best.ratio_to_eager,
        })  # fmt: skip
    # read again: the verification above recorded where each candidate passed
    recorded = dataclasses.replace(read_manifest(export_dir), tuned=tuple(choices))
    write_json(Path(export_dir) / MANIFEST, recorded.to_dict())
    return TuneResult(rows, rejected, choices)
