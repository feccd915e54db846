"""The benchmark suite: reference shapes and zoo models, every runtime, one command.

    python benchmarks/run.py            # regenerates benchmarks/BENCHMARKS.md and plots/
    python benchmarks/run.py --quick    # tiny sizes, into a temporary directory (smoke test)

Models are written as checkpoints and exported with `rnnx export`'s code path, so the eager
baseline is the model rebuilt from the checkpoint, as users measure it. All ratios are medians
measured in the same run, with runtimes interleaved, on one thread unless stated.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rnnx.benchmark import BenchOptions, BenchRow, bench
from rnnx.benchmark.machine import measure_machine
from rnnx.benchmark.report import plot
from rnnx.core.signature import random_inputs
from rnnx.models import keyword_spotter_lstm
from rnnx.pipeline import ExportOptions, export_checkpoint


@dataclasses.dataclass
class Case:
    """One table of the report: a model, the shapes to run, and the targets that apply."""

    name: str
    make: object  # () -> nn.Module
    shapes: list[tuple[int, int]]  # (batch, time)
    targets: dict[tuple[str, int, int], float] = dataclasses.field(default_factory=dict)
    quantize: bool = False
    pt2: bool = False  # also the pt2 format (AOTInductor, ~15 s to compile): aoti, cpp-aoti rows
    chunks: tuple[int, ...] = ()
    threads: tuple[int, ...] = (1,)
    # (runtime, chunk) -> the most p50 milliseconds allowed, at 1 thread
    latency_targets: dict[tuple[str, int], float] = dataclasses.field(default_factory=dict)


def cases(quick: bool) -> list[Case]:
    if quick:
        return [
            Case("LSTM 2×16", lambda: nn.LSTM(8, 16, 2), [(1, 5)], quantize=True),
            Case("GRU 2×16 streaming", lambda: nn.GRU(8, 16, 2), [(1, 5)], chunks=(1,)),
        ]
    return [
        Case(
            "LSTM 2×256",
            lambda: nn.LSTM(80, 256, 2),
            [(1, 100), (16, 100), (64, 200)],
            {
                ("onnxruntime", 1, 100): 0.75,
                ("onnxruntime", 64, 200): 1.0,
                ("onnxruntime:onnx-int8", 1, 100): 0.35,
            },
            quantize=True,
            pt2=True,
        ),
        Case(
            "LSTM 2×256 bidirectional", lambda: nn.LSTM(80, 256, 2, bidirectional=True), [(1, 100)]
        ),
        Case(
            "GRU 2×256",
            lambda: nn.GRU(80, 256, 2),
            [(1, 100), (64, 200)],
            {("onnxruntime", 1, 100): 0.50, ("onnxruntime", 64, 200): 1.0},
        ),
        Case(
            "LSTM 1024 proj 256",
            lambda: nn.LSTM(80, 1024, 2, proj_size=256),
            [(1, 100), (16, 100)],
            {("onnxruntime", 1, 100): 1.0, ("onnxruntime", 16, 100): 1.0},
        ),
        Case(
            "LSTM 256 proj 128",
            lambda: nn.LSTM(80, 256, 2, proj_size=128),
            [(1, 100), (16, 100)],
            {("onnxruntime", 1, 100): 0.6, ("onnxruntime", 16, 100): 0.6},
        ),
        Case(
            "LSTM 2×256 streaming, one step per call",
            lambda: nn.LSTM(80, 256, 2),
            [(1, 100)],
            chunks=(1, 10),
            threads=(1, 2),
            latency_targets={("cpp-onnxruntime", 1): 0.050},
            pt2=True,
        ),
        Case(
            "zoo: keyword spotter (LSTM 40→64 ×2, batch_first)",
            keyword_spotter_lstm,
            [(1, 100), (8, 100)],
        ),
    ]


def run_case(case: Case, work: Path, repeats: int, cpp: bool) -> tuple[list[BenchRow], dict]:
    torch.manual_seed(0)
    module = case.make().eval()
    checkpoint = work / f"{_slug(case.name)}.pt"
    torch.save(module.state_dict(), checkpoint)
    from rnnx.exporter.checkpoint import LoadOptions

    export_dir = work / _slug(case.name)
    export_checkpoint(
        checkpoint,
        export_dir,
        ExportOptions(
            formats=ExportOptions().formats + (("pt2",) if case.pt2 else ()),
            force=True,
            verify=False,
            quantize="int8" if case.quantize else None,
        ),
        LoadOptions(batch_first=getattr(module, "batch_first", False)),
    )
    extra = {}
    if case.quantize:
        extra["int8_error"] = int8_error(export_dir, module)
    rows: list[BenchRow] = []
    for batch, steps in case.shapes:
        options = BenchOptions(
            batches=(batch,),
            times=(steps,),
            repeats=repeats,
            chunks=case.chunks,
            threads=case.threads,
            # None: every runtime, the C++ runners included (built by main)
            runtimes=None if cpp else python_runtimes(case),
            min_seconds=0.0 if repeats < 10 else 1.0,
        )
        rows += bench(export_dir, options)
    extra["providers"] = sorted({r.providers for r in rows})
    return rows, extra


def python_runtimes(case: Case) -> tuple[str, ...]:
    return (
        ("eager", "torchscript", "onnxruntime")
        + (("onnxruntime:onnx-int8",) if case.quantize else ())
        + (("aoti",) if case.pt2 else ())
    )


def build_cpp(skip: bool) -> tuple[bool, str]:
    """Build the C++ runners for their rows; (built, what the report says about them)."""
    if skip:
        return False, "not measured (--no-cpp or --quick)"
    from rnnx.core.errors import RnnxError
    from rnnx.cpp_build import build

    try:
        build()
    except RnnxError as error:  # no C++ toolchain: the Python suite still runs
        return False, f"not measured: {error}"
    return True, "`cpp-*` rows, timed by the runners' own `--bench` in a separate process"


def int8_error(export_dir: Path, module: nn.Module) -> float:
    """Max abs error of the int8 model against eager at batch 1 × 100, unit-scale input."""
    import rnnx

    session = rnnx.load(export_dir, "onnxruntime", format="onnx-int8")
    sizes = {"batch": 1, "time": 100}
    feeds = random_inputs(session.signature, sizes, zero_state=True)
    with torch.inference_mode():
        expected = module(torch.from_numpy(feeds["input"]))[0].numpy()
    return float(np.abs(session.run(feeds)["output"] - expected).max())


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:40]


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnx
    import onnxruntime

    import rnnx

    machine = measure_machine()
    bandwidth = ", ".join(
        f"{size >> 20 or size >> 10}{'MiB' if size >> 20 else 'KiB'}: {gbs:.0f} GB/s"
        for size, gbs in machine.bandwidth_gbs.items()
    )
    return (
        f"- Machine: {cpu}, {os.cpu_count()} cores visible, benchmarks on 1 thread\n"
        f"- Measured limits: fp32 matmul {machine.matmul_gflops:.0f} GFLOP/s (1 thread, 512³); "
        f"read bandwidth by working set: {bandwidth}\n"
        f"- Versions: rnnx {rnnx.__version__}, torch {torch.__version__}, onnxruntime "
        f"{onnxruntime.__version__}, onnx {onnx.__version__}, Python {platform.python_version()}\n"
        f"- Date: {datetime.date.today().isoformat()}; command: `python benchmarks/run.py`"
    )


def report(results: list[tuple[Case, list[BenchRow], dict]], cpp_note: str, plots: Path) -> str:
    lines = [
        "# rnnx benchmarks",
        "",
        "Generated by `benchmarks/run.py`; do not edit by hand. Latency medians (p50) of "
        "interleaved runs; `vs eager` is the ratio to eager PyTorch measured in the same "
        "rounds; `x floor` is p50 over the time this machine needs for the arithmetic or for "
        "reading the recurrent weights once per step, whichever is larger.",
        "",
        machine_description(),
        f"- C++ runners: {cpp_note}",
        "",
        "## Targets",
        "",
        "| model | runtime | batch × time | target (vs eager) | measured | |",
        "|---|---|---|---|---|---|",
    ]
    for case, rows, _ in results:
        for (runtime, batch, steps), target in case.targets.items():
            row = next(
                (
                    r
                    for r in rows
                    if (r.runtime, r.batch, r.time) == (runtime, batch, steps) and r.chunk is None
                ),
                None,
            )
            if row is None:
                continue
            met = "met" if row.ratio_to_eager <= target else "**missed**"
            lines.append(
                f"| {case.name} | {runtime} | {batch} × {steps} | ≤ {target:.2f}× | "
                f"{row.ratio_to_eager:.2f}× | {met} |"
            )
        for (runtime, chunk), limit_ms in case.latency_targets.items():
            row = next(
                (r for r in rows if (r.runtime, r.chunk, r.threads) == (runtime, chunk, 1)), None
            )
            if row is None:
                lines.append(
                    f"| {case.name} | {runtime} | chunk {chunk} | ≤ {limit_ms * 1e3:.0f} µs per call | not measured (C++ runners not built) | |"
                )
                continue
            met = "met" if row.p50_ms <= limit_ms else "**missed**"
            lines.append(
                f"| {case.name} | {runtime} | {row.batch} × chunk {chunk} | ≤ {limit_ms * 1e3:.0f} µs per call | {row.p50_ms * 1e3:.0f} µs | {met} |"
            )
    for case, rows, extra in results:
        lines += ["", f"## {case.name}", ""]
        if "int8_error" in extra:
            lines += [
                f"int8 (dynamic quantization) max abs error vs eager, batch 1 × 100, unit-scale "
                f"input, zero state: {extra['int8_error']:.2e} (target ≤ 5e-3)",
                "",
            ]
        lines += [
            "| runtime | threads | batch × time | chunk | p50 ms | p90 ms | p99 ms | frames/s | vs eager | x floor | RTF @100 fps |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r.runtime} | {r.threads} | {r.batch} × {r.time} | {r.chunk or '-'} | {r.p50_ms:.3f} | {r.p90_ms:.3f} | "
                f"{r.p99_ms:.3f} | {r.frames_per_s:,.0f} | {r.ratio_to_eager:.2f}× | "
                f"{f'{r.times_floor:.1f}' if r.times_floor else '-'} | "
                f"{f'{r.real_time_factor:.4f}' if r.real_time_factor else '-'} |"
            )
        lines += [
            "",
            f"Providers: {', '.join(extra['providers'])}",
            "",
            f"![{case.name}](plots/{_slug(case.name)}.png)",
        ]
        plot(rows, plots / f"{_slug(case.name)}.png", title=case.name)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="report directory (default: benchmarks/, or a temporary one with --quick)",
    )
    parser.add_argument(
        "--no-cpp", action="store_true", help="skip building and timing the C++ runner"
    )
    args = parser.parse_args(argv)
    out = args.out or (
        Path(tempfile.mkdtemp(prefix="rnnx-bench-")) if args.quick else Path(__file__).parent
    )
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    repeats = 3 if args.quick else 30
    cpp, cpp_note = build_cpp(skip=args.no_cpp or args.quick)
    with tempfile.TemporaryDirectory(prefix="rnnx-bench-work-") as work:
        results = []
        for case in cases(args.quick):
            print(f"benchmarking {case.name} ...", file=sys.stderr, flush=True)
            rows, extra = run_case(case, Path(work), repeats, cpp)
            results.append((case, rows, extra))
        text = report(results, cpp_note, plots)
    (out / "BENCHMARKS.md").write_text(text)
    print(f"wrote {out / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
