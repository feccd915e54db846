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

from rnnx.benchmark import BenchOptions, BenchRow, bench, targets
from rnnx.benchmark.machine import measure_machine
from rnnx.benchmark.report import plot
from rnnx.core.machine import this_machine
from rnnx.core.signature import random_inputs
from rnnx.formats import RUNTIMES, format_choices, runtime_missing
from rnnx.models import keyword_spotter_lstm
from rnnx.pipeline import ExportOptions, export_checkpoint
from rnnx.tune import verified_targets

# What the user would reach for without rnnx, run on the same model in the same rounds
# (whole sequences, zero initial state): the "best peer" of the report's comparison.
PEER_PRECISIONS = {"f32": "f32", "bf16": "bf16"}


@dataclasses.dataclass
class Case:
    """One table of the report: a model, the shapes to run, and the targets that apply."""

    name: str
    make: object  # () -> nn.Module
    shapes: list[tuple[int, int]]  # (batch, time)
    targets: dict[tuple[str, int, int], float] = dataclasses.field(default_factory=dict)
    quantize: bool = False
    # formats written beside the defaults (onnx-folded; pt2: AOTInductor, ~15 s to compile)
    formats: tuple[str, ...] = ()
    chunks: tuple[int, ...] = ()
    threads: tuple[int, ...] = (1,)
    # (runtime, chunk) -> the most p50 milliseconds allowed, at 1 thread
    latency_targets: dict[tuple[str, int], float] = dataclasses.field(default_factory=dict)


def cases(quick: bool) -> list[Case]:
    if quick:
        return [
            Case("LSTM 2×16", lambda: nn.LSTM(8, 16, 2), [(1, 5)], quantize=True),
            Case(
                "GRU 2×16 streaming", lambda: nn.GRU(8, 16, 2), [(1, 5)], chunks=(1,), quantize=True
            ),
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
            formats=("pt2",),
        ),
        Case(
            "LSTM 2×256 bidirectional",
            lambda: nn.LSTM(80, 256, 2, bidirectional=True),
            [(1, 100)],
            quantize=True,
        ),
        Case(
            "GRU 2×256",
            lambda: nn.GRU(80, 256, 2),
            [(1, 100), (64, 200)],
            {
                ("onnxruntime", 1, 100): 0.50,
                ("onnxruntime", 64, 200): 1.0,
                ("onnxruntime:onnx-int8", 1, 100): 0.30,
            },
            quantize=True,
        ),
        Case(
            "RNN 2×256 (tanh)",
            lambda: nn.RNN(80, 256, 2),
            [(1, 100), (64, 200)],
            quantize=True,
        ),
        Case(
            "LSTM 1024 proj 256",
            lambda: nn.LSTM(80, 1024, 2, proj_size=256),
            [(1, 100), (16, 100)],
            {
                ("onnxruntime", 1, 100): 1.0,
                ("onnxruntime", 16, 100): 1.0,
                ("onnxruntime:onnx-int8", 1, 100): 0.45,
            },
            quantize=True,
            formats=("onnx-folded",),
        ),
        Case(
            "LSTM 256 proj 128",
            lambda: nn.LSTM(80, 256, 2, proj_size=128),
            [(1, 100), (16, 100)],
            {("onnxruntime", 1, 100): 0.6, ("onnxruntime", 16, 100): 0.6},
            formats=("onnx-folded",),
        ),
        Case(
            "LSTM 2×256 streaming, one step per call",
            lambda: nn.LSTM(80, 256, 2),
            [(1, 100)],
            chunks=(1, 10),
            threads=(1, 2),
            latency_targets={("cpp-onnxruntime", 1): 0.050},
            formats=("pt2",),
        ),
        Case(
            "zoo: keyword spotter (LSTM 40→64 ×2, batch_first)",
            keyword_spotter_lstm,
            [(1, 100), (8, 100)],
            quantize=True,
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
            formats=(*format_choices(defaults_only=True), *case.formats),
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
    peers, extra["peers_left_out"] = ({}, {}) if case.chunks else peer_runs(module)
    # the suite compiled the pt2 packages itself: it may open them (rnnx.formats.check_code_trust)
    trusted = LoadOptions(trust_checkpoint=True)
    verified, extra["rejected"] = verified_targets(export_dir, trust=trusted)
    extra["verified"] = {t.name for t in verified}
    for batch, steps in case.shapes:
        options = BenchOptions(
            trust=trusted,
            batches=(batch,),
            times=(steps,),
            repeats=repeats,
            chunks=case.chunks,
            threads=case.threads,
            # None: every runtime, the C++ runners included (built by main)
            runtimes=None if cpp else python_runtimes(case),
            min_seconds=0.0 if repeats < 10 else 1.0,
        )
        rows += bench(export_dir, options, peers=peers)
    extra["providers"] = sorted({r.providers for r in rows})
    return rows, extra


def peer_runs(module: nn.Module) -> tuple[dict, dict[str, str]]:
    """The peers of rnnx's paths: eager PyTorch in bf16, and OpenVINO converting the PyTorch
    module itself (`ov.convert_model`, not rnnx's ONNX) at f32 and bf16, on one thread.
    Returns (name -> run(feeds), name -> why it was left out)."""
    import copy

    import openvino as ov

    def first_output(result):
        return result[0] if isinstance(result, tuple) else result

    bf16 = copy.deepcopy(module).to(torch.bfloat16)

    def eager_bf16(feeds):
        with torch.inference_mode():
            return first_output(bf16(torch.from_numpy(feeds["input"]).to(torch.bfloat16)))

    peers, left_out = {"peer eager@bf16": eager_bf16}, {}

    class FirstOutput(nn.Module):  # convert_model traces one tensor out
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return first_output(self.inner(x))

    # the suite's models are bare recurrent layers: (time, batch, features) or batch_first
    example = torch.randn(1, 100, module.input_size)
    example = example if module.batch_first else example.transpose(0, 1)
    try:
        converted = ov.convert_model(FirstOutput(module).eval(), example_input=(example,),
                                     input=[ov.PartialShape([-1] * example.dim())])  # fmt: skip
    except Exception as error:  # noqa: BLE001 - any conversion failure is the peer's answer
        for precision in PEER_PRECISIONS:
            left_out[f"peer openvino@{precision}"] = str(error).strip().splitlines()[-1][:160]
        return peers, left_out
    for precision, hint in PEER_PRECISIONS.items():
        compiled = ov.Core().compile_model(converted, "CPU", {
            "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": 1,
        })  # fmt: skip
        peers[f"peer openvino@{precision}"] = lambda feeds, c=compiled: c(feeds["input"])[0]
    return peers, left_out


def python_runtimes(case: Case) -> tuple[str, ...]:
    """The in-process targets when the C++ runners are skipped: OpenVINO at each precision this
    CPU has too, since it is often rnnx's best path against the peers."""
    openvino = RUNTIMES["openvino"]
    return (
        ("eager", "torchscript", "onnxruntime")
        + (("onnxruntime:onnx-int8",) if case.quantize else ())
        + tuple(_reader(name) for name in case.formats)
        + (
            ("openvino", *(f"openvino@{p}" for p in openvino.precisions_here()))
            if runtime_missing(openvino) is None
            else ()
        )  # fmt: skip
    )


def _reader(fmt: str) -> str:
    """The Python benchmark target that reads `fmt` (onnxruntime:onnx-folded, aoti)."""
    return next(t.name for t in targets().values()
                if t.format == fmt and t.runtime.runner is None and t.precision == "f32")  # fmt: skip


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

    # this measures the error itself (the suite exports unverified, to verify per target)
    session = rnnx.load(export_dir, "onnxruntime", format="onnx-int8", warn_unverified=False)
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
        f"- CPU class: {this_machine().cpu_class} (flags: {' '.join(this_machine().flags)}); "
        "int8 and bf16 speed and error differ between classes: one report per class "
        "(BENCHMARKS-<class>.md)\n"
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
    lines += peer_comparison(results)
    for case, rows, extra in results:
        lines += ["", f"## {case.name}", ""]
        if "int8_error" in extra:
            lines += [
                f"int8 (dynamic quantization) max abs error vs eager, batch 1 × 100, unit-scale "
                f"input, zero state: {extra['int8_error']:.2e} (target ≤ 5e-3: "
                f"{'met' if extra['int8_error'] <= 5e-3 else '**missed**'})",
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


def peer_comparison(results: list[tuple[Case, list[BenchRow], dict]]) -> list[str]:
    """rnnx's fastest verified path against the fastest peer, per shape (target ≤ 0.9×)."""
    lines = [
        "",
        "## rnnx's best verified path vs the best peer",
        "",
        "Peers run the same model without rnnx, in the same interleaved rounds: eager PyTorch "
        "in bf16, and OpenVINO converting the PyTorch module directly (`ov.convert_model`) at "
        "f32 and bf16; eager f32 counts as a peer too. rnnx's paths count only when they pass "
        "`rnnx verify` at their precision's tolerance (the C++ runners are not candidates "
        "here). Target: rnnx's best ≤ 0.9× the best peer.",
        "",
        "| model | batch × time | rnnx's best | vs eager | best peer | vs eager | rnnx / peer | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for case, rows, extra in results:
        if case.chunks:
            continue
        for batch, steps in case.shapes:
            shape = [r for r in rows
                     if (r.batch, r.time, r.threads, r.chunk) == (batch, steps, 1, None)]  # fmt: skip
            ours = [r for r in shape if r.runtime in extra["verified"]]
            theirs = [r for r in shape if r.providers == "peer" or r.runtime == "eager"]
            if not ours or not theirs:
                continue
            best = min(ours, key=lambda r: r.p50_ms)
            peer = min(theirs, key=lambda r: r.p50_ms)
            ratio = best.p50_ms / peer.p50_ms
            lines.append(
                f"| {case.name} | {batch} × {best.time} | {best.runtime} | "
                f"{best.ratio_to_eager:.2f}× | {peer.runtime} | {peer.ratio_to_eager:.2f}× | "
                f"{ratio:.2f}× | {'met' if ratio <= 0.9 else '**missed**'} |"
            )
        for name, why in {**extra["peers_left_out"], **extra["rejected"]}.items():
            notes.append(f"- {case.name}: {name} left out: {why}")
    return lines + ([""] + notes if notes else [])


def serving_section(work: Path) -> str:
    """The serving load test (benchmarks/serve.py) measured in this run, as a report section."""
    from serve import measure  # benchmarks/serve.py, beside this script

    print("benchmarking serving on tritonserver ...", file=sys.stderr, flush=True)
    (work / "serve").mkdir()
    text = measure(work / "serve", (8, 64, 256), steps=20)
    return text.replace("\n# ", "\n## ").replace("# ", "## ", 1)


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
    parser.add_argument(
        "--no-serve", action="store_true", help="skip the load test on a real tritonserver"
    )
    parser.add_argument(
        "--only", default="", help="run only the cases whose name contains this (needs --out)"
    )
    args = parser.parse_args(argv)
    if args.only and not args.out:
        parser.error("--only writes a partial report: give it its own --out directory")
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
        for case in (c for c in cases(args.quick) if args.only in c.name):
            print(f"benchmarking {case.name} ...", file=sys.stderr, flush=True)
            rows, extra = run_case(case, Path(work), repeats, cpp)
            results.append((case, rows, extra))
        text = report(results, cpp_note, plots)
        if not args.quick and not args.no_serve:
            text += "\n" + serving_section(Path(work))
    # the latest run, and the report of its CPU class, kept beside the other classes' reports
    per_class = out / f"BENCHMARKS-{this_machine().cpu_class}.md"
    for path in (out / "BENCHMARKS.md", per_class):
        path.write_text(text)
    print(f"wrote {out / 'BENCHMARKS.md'} and {per_class}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
