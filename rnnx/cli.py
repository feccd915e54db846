"""The `rnnx` command: parse options, call one API function, print. No logic here.

Heavy modules (torch, onnxruntime) are imported inside the commands so `rnnx --help` is fast.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from rnnx.benchmark import BenchOptions, targets
from rnnx.compare import VerifyOptions
from rnnx.core.errors import RnnxError, first_line
from rnnx.core.text import terminal_safe
from rnnx.core.version import __version__
from rnnx.exporter.opsets import DEFAULT_OPSET, MIN_OPSET
from rnnx.formats import FORMATS, PYTHON_RUNTIMES, format_choices
from rnnx.serving.config import TritonOptions
from rnnx.serving.triton import FLAVOURS


class _Group(click.Group):
    """Turns every RnnxError (and click's usage errors) into one clear line and exit code 1.

    Anything else is a bug in rnnx or its dependencies: still one line (exit code 2) with the
    exception, and the full traceback only when RNNX_DEBUG=1.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as error:
            error.exit_code = 1
            raise

    def invoke(self, ctx: click.Context) -> Any:
        import warnings

        from rnnx.core.errors import RnnxWarning

        def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
            if issubclass(category, RnnxWarning):
                click.echo(f"rnnx: warning: {message}", err=True)

        warnings.showwarning = show  # rnnx's own warnings as one line; library noise stays out
        try:
            return super().invoke(ctx)
        except RnnxError as error:  # names from an artifact may hold escape sequences
            click.echo(f"rnnx: error: {terminal_safe(error, 2000)}", err=True)
            sys.exit(1)
        except click.UsageError as error:
            error.exit_code = 1  # a bad option is the user's to fix; exit code 2 means a bug
            raise
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as error:
            if os.environ.get("RNNX_DEBUG") == "1":
                raise
            click.echo(
                f"rnnx: internal error: {type(error).__name__}: {first_line(error)} "
                "(set RNNX_DEBUG=1 for the traceback)",
                err=True,
            )
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="rnnx")
def main() -> None:
    """Export PyTorch RNN/LSTM/GRU models to ONNX and TorchScript, verified against eager."""


# One declaration per option: the commands that take an option share its decorator, so its
# name, type, default and meaning cannot drift between them. A command may say in its own help
# what the option does there (`help=`); nothing else is overridden.


def _model_option(help: str) -> Any:
    return click.option("--model", "model_class", default=None, metavar="PACKAGE.MODULE:CLASS",
                        help=help)  # fmt: skip


def _init_args_option(help: str = "Keyword arguments for --model, as JSON.") -> Any:
    return click.option("--init-args", default="{}", metavar="JSON", help=help)


def _trust_checkpoint_option(help: str) -> Any:
    return click.option("--trust-checkpoint", is_flag=True, help=help)


def _force_option(what: str) -> Any:
    return click.option("--force", is_flag=True, help=f"Replace an existing {what}.")


def _output_option(dest: str, help: str) -> Any:
    return click.option("-o", "--output", dest, type=click.Path(path_type=Path), required=True,
                        help=help)  # fmt: skip


def _runtime_option(default: str | None, help: str | None = None) -> Any:
    """--runtime of the commands that open one artifact in a runtime (never eager)."""
    choices = click.Choice([r for r in PYTHON_RUNTIMES if r != "eager"])
    return click.option("--runtime", type=choices, default=default,
                        show_default=default is not None, help=help)  # fmt: skip


def _provider_option(help: str | None = None) -> Any:
    return click.option("--provider", default="cpu", show_default=True, help=help)


def _threads_option(help: str) -> Any:
    """--threads of the commands that open one session (bench and tune take a list)."""
    return click.option("--threads", type=int, default=None, help=help)


def _json_path_option(help: str | None = None) -> Any:
    return click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
                        help=help)  # fmt: skip


def _json_flag_option(instead_of: str) -> Any:
    return click.option("--json", "as_json", is_flag=True,
                        help=f"Print one JSON document instead of {instead_of}.")  # fmt: skip


def _build_dir_option(help: str) -> Any:
    return click.option("--build-dir", type=click.Path(path_type=Path), default=None, help=help)


def _apply(command: Any, options: list[Any]) -> Any:
    for option in reversed(options):
        command = option(command)
    return command


def _measure_options(repeats: int) -> Any:
    """--batch, --time, --threads and --repeats of `rnnx bench` and `rnnx tune`."""
    return lambda command: _apply(command, [
        click.option("--batch", "batches", default="1", show_default=True,
                     help="Batch sizes, e.g. 1,16."),
        click.option("--time", "times", default="100", show_default=True,
                     help="Sequence lengths, e.g. 100,200."),
        click.option("--threads", default="1", show_default=True,
                     help="Thread counts, e.g. 1,2."),
        click.option("--repeats", type=int, default=repeats, show_default=True,
                     help="Timed calls per runtime."),
    ])  # fmt: skip


def _verify_options(command: Any) -> Any:
    """--atol, --rtol and --verify-sizes, handed to the command as one VerifyOptions."""

    @functools.wraps(command)
    def with_verify_options(
        *args: Any, atol: float, rtol: float, verify_sizes: str | None, **kwargs: Any
    ) -> Any:
        sizes = _size_pairs(verify_sizes) if verify_sizes else VerifyOptions.sizes
        options = VerifyOptions(atol=atol, rtol=rtol, sizes=sizes)
        return command(*args, verify_options=options, **kwargs)

    default_sizes = ",".join(f"{b}x{t}" for b, t in VerifyOptions.sizes)
    return _apply(with_verify_options, [
        click.option("--atol", type=float, default=VerifyOptions.atol, show_default=True,
                     help="Absolute tolerance for verification."),
        click.option("--rtol", type=float, default=VerifyOptions.rtol, show_default=True,
                     help="Relative tolerance for verification."),
        click.option("--verify-sizes", default=None, metavar="BxT,...",
                     help=f"Batch x time sizes to verify at (default {default_sizes}; moved up "
                     "to the model's minimum length and stride, down to a pte program's "
                     "--max-time)."),
    ])  # fmt: skip


def _size_pairs(text: str) -> tuple[tuple[int, int], ...]:
    pairs = []
    for item in text.split(","):
        batch, _, time = item.strip().lower().partition("x")
        if not (batch.isdigit() and time.isdigit() and int(batch) >= 1 and int(time) >= 1):
            raise RnnxError(
                f"--verify-sizes expects BATCHxTIME pairs such as 1x1,3x40, got {item!r}"
            )
        pairs.append((int(batch), int(time)))
    return tuple(pairs)


def _checkpoint_options(command: Any) -> Any:
    """The options that say how to load a checkpoint, handed to the command as one LoadOptions."""

    @functools.wraps(command)
    def with_load_options(
        *args: Any,
        model_class: str | None,
        init_args: str,
        nonlinearity: str,
        batch_first: bool,
        trust_checkpoint: bool,
        **kwargs: Any,
    ) -> Any:
        from rnnx.exporter.checkpoint import LoadOptions

        load_options = LoadOptions(
            model=model_class,
            init_args=_json_object(init_args),
            nonlinearity=nonlinearity,
            batch_first=batch_first,
            trust_checkpoint=trust_checkpoint,
        )
        return command(*args, load_options=load_options, **kwargs)

    return _apply(with_load_options, [
        _model_option("Build this module class and load the checkpoint's weights into it."),
        _init_args_option(),
        click.option("--nonlinearity", type=click.Choice(["tanh", "relu"]), default="tanh",
                     show_default=True, help="For an nn.RNN state_dict (the weights cannot tell)."),
        click.option("--batch-first", is_flag=True,
                     help="For a bare-layer state_dict: inputs are (batch, time, feature)."),
        _trust_checkpoint_option("Allow unpickling a full nn.Module (this runs code from the "
                                 "file)."),
    ])  # fmt: skip


def _trust_options(command: Any) -> Any:
    """--model, --init-args and --trust-checkpoint for commands that rebuild the eager model
    from an export: handed over as one LoadOptions (`trust`). The manifest grants no trust."""

    @functools.wraps(command)
    def with_trust(
        *args: Any, model_class: str | None, init_args: str, trust_checkpoint: bool, **kwargs: Any
    ) -> Any:
        from rnnx.exporter.checkpoint import LoadOptions

        trust = LoadOptions(
            model=model_class, init_args=_json_object(init_args), trust_checkpoint=trust_checkpoint
        )
        return command(*args, trust=trust, **kwargs)

    return _apply(with_trust, [
        _model_option("The eager model's class, if it was exported with --model (imports it)."),
        _init_args_option("Keyword arguments for --model, as JSON (default: those of the export)."),
        _trust_checkpoint_option("Allow running code from the export: unpickling the eager "
                                 "model's checkpoint, loading a compiled pt2 package."),
    ])  # fmt: skip


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise RnnxError(f"--init-args is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise RnnxError("--init-args must be a JSON object of keyword arguments")
    return value


@main.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@_output_option("output_dir", "Export directory to create.")
@click.option(
    "--format",
    "fmt",
    default="all",
    show_default=True,
    help=f"Formats to write, comma-separated: {', '.join(FORMATS)}, or all "
    f"({', '.join(format_choices(defaults_only=True))}).",
)
@click.option(
    "--opset",
    type=int,
    default=DEFAULT_OPSET,
    show_default=True,
    help=f"ONNX opset (at least {MIN_OPSET}).",
)
@click.option(
    "--stateless", is_flag=True, help="Export input -> output only (states start at zero)."
)
@click.option(
    "--no-verify", is_flag=True, help="Skip checking the artifacts against eager PyTorch."
)
@_force_option("export directory")
@click.option(
    "--quantize",
    type=click.Choice(["int8", "int8-vnni", "int8,int8-vnni"]),
    default=None,
    help="Also write a dynamically quantized ONNX model: int8 (model.int8.onnx, correct on "
    "every x86-64 CPU) or int8-vnni (model.int8-vnni.onnx, faster, VNNI CPUs only).",
)
@click.option(
    "--chunk",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Time steps per call of the fixed-chunk pte format (ExecuTorch).",
)
@click.option(
    "--max-time",
    type=click.IntRange(min=2),
    default=None,
    help="Write the dynamic-time pte format, taking sequences of up to T steps (the default for "
    "models that do not stream, with T = 1024).",
    metavar="T",
)
@_verify_options
@_checkpoint_options
def export(
    checkpoint: Path,
    output_dir: Path,
    fmt: str,
    opset: int,
    stateless: bool,
    no_verify: bool,
    load_options: Any,
    force: bool,
    quantize: str | None,
    chunk: int,
    max_time: int | None,
    verify_options: Any,
) -> None:
    """Export CHECKPOINT to an export directory: model.onnx, model.torchscript.pt, rnnx.json."""
    from rnnx.pipeline import ExportOptions, export_checkpoint

    # "all" stays "all": the default formats, each kept if it verifies; a name is required
    names = [n.strip() for n in fmt.split(",") if n.strip()]
    options = ExportOptions(
        formats=tuple(dict.fromkeys(names)),
        opset=opset,
        stateless=stateless,
        verify=not no_verify,
        verify_options=verify_options,
        force=force,
        quantize=quantize,
        chunk=chunk,
        max_time=max_time,
    )
    result = export_checkpoint(checkpoint, output_dir, options, load_options)
    spec = result.manifest.spec
    what = spec.describe() if spec else (result.manifest.class_path or "model").rsplit(".", 1)[-1]
    click.echo(f"exported {what} to {result.output_dir}/")
    for fmt_name, name in result.manifest.artifacts.items():
        compiled = result.manifest.notes.get(fmt_name, {}).get("compile_s")
        took = f" (compiled in {compiled:.1f} s)" if compiled is not None else ""
        click.echo(f"  {name:<24} {fmt_name}{took}")
    if result.report is not None:
        _print_report(result.report)
    else:
        click.echo("  not verified (--no-verify)")


@main.command()
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    default=None,
    help="The eager model's checkpoint, if it moved since export.",
)
@_json_path_option("Also write the full report as JSON to this file.")
@_runtime_option(
    None, "Run the artifacts in this runtime (default: the one that verifies each format)."
)
@click.option(
    "--precision",
    type=click.Choice(["f32", "bf16", "f16"]),
    default=None,
    help="Inference precision, for runtimes that have one (openvino); checked with its tolerance.",
)
@click.option(
    "--emulate-cpu",
    type=click.Choice(["avx2"]),
    default=None,
    help="Run the onnxruntime artifacts under qemu-user presenting this CPU class (x86-64 "
    "hosts with qemu-user), to verify for machines of that class.",
)
@click.option(
    "--record",
    is_flag=True,
    help="Add the artifacts that passed, with this machine's CPU class, to the manifest.",
)
@_verify_options
@_trust_options
def verify(
    export_dir: Path,
    checkpoint: Path | None,
    json_path: Path | None,
    runtime: str | None,
    precision: str | None,
    emulate_cpu: str | None,
    record: bool,
    verify_options: Any,
    trust: Any,
) -> None:
    """Check every artifact in EXPORT_DIR against eager PyTorch at several shapes."""
    from rnnx.core.manifest import write_json
    from rnnx.pipeline import check_report_path, machine_line
    from rnnx.pipeline import verify as run_verify

    if json_path is not None:
        check_report_path(export_dir, json_path)
    if precision is not None and runtime is None:
        raise RnnxError("--precision needs --runtime (the runtime that runs at that precision)")
    extra = {"precision": precision} if precision else {}
    if emulate_cpu:
        extra["emulate_cpu"] = emulate_cpu
    report = run_verify(export_dir, options=verify_options, checkpoint=checkpoint,
                        runtime=runtime, trust=trust, record=record, **extra)  # fmt: skip
    _print_report(report)
    click.echo(machine_line(export_dir, report))
    if json_path is not None:
        write_json(json_path, report.to_dict())
    if not report.passed:
        raise RnnxError(f"verification failed: {report.first_failure()}")


@main.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option(
    "--input",
    "input_path",
    type=click.Path(path_type=Path),
    required=True,
    help="A .npy (the model's one data input) or an .npz of named inputs.",
)
@_output_option("output_path", "Where to write the outputs (.npz).")
@click.option(
    "--runtime",
    type=click.Choice(list(PYTHON_RUNTIMES)),
    default="onnxruntime",
    show_default=True,
)
@_provider_option("onnxruntime provider (cpu, cuda[:N], or a full provider name) or torch device.")
@click.option(
    "--allow-fallback", is_flag=True, help="Run on CPU, with a warning, if the provider is missing."
)
@_threads_option("Intra-op threads (onnxruntime).")
@click.option(
    "--chunk",
    type=int,
    default=None,
    help="Stream the time axis through a stateful session, N steps per call.",
)
@_trust_options
def run(
    model_dir: Path,
    input_path: Path,
    output_path: Path,
    runtime: str,
    provider: str,
    allow_fallback: bool,
    threads: int | None,
    chunk: int | None,
    trust: Any,
) -> None:
    """Run the exported model in MODEL_DIR on arrays from a file; write its outputs to an .npz."""
    from rnnx.run import RunOptions, run_file

    options = RunOptions(
        runtime=runtime,
        provider=provider,
        allow_fallback=allow_fallback,
        threads=threads,
        chunk=chunk,
        trust=trust,
    )
    outputs = run_file(model_dir, input_path, output_path, options)
    for name, array in outputs.items():
        click.echo(f"  {name:<12} {list(array.shape)}")
    click.echo(f"wrote {output_path}")


@main.group()
def cpp() -> None:
    """The C++ library and runners in cpp/ (ONNX Runtime and libtorch)."""


@cpp.command("build")
@_build_dir_option(
    "Build directory (default: cpp/build in a checkout, else ~/.cache/rnnx/cpp-VERSION)."
)
@click.option("--no-torch", is_flag=True, help="Build the ONNX Runtime runner only.")
@click.option("--jobs", type=int, default=2, show_default=True)
def cpp_build(build_dir: Path | None, no_torch: bool, jobs: int) -> None:
    """Build cpp/ against the installed onnxruntime and torch packages; print the runners."""
    from rnnx.cpp_build import build, prefix_dir

    for runtime, path in build(build_dir, torch=not no_torch, jobs=jobs).items():
        click.echo(f"{runtime:<16} {path}")
    click.echo(f"{'cmake prefix':<16} {prefix_dir(build_dir)}")


@cpp.command("prefix")
@_build_dir_option("Build directory given to `rnnx cpp build` (default: the same default).")
def cpp_prefix(build_dir: Path | None) -> None:
    """Print the CMake prefix of the build, for -DCMAKE_PREFIX_PATH and find_package(rnnx)."""
    from rnnx.cpp_build import config_file, prefix_dir

    if not config_file(build_dir).is_file():
        raise RnnxError(f"no rnnx CMake package at {prefix_dir(build_dir)}: run `rnnx cpp build`")
    click.echo(prefix_dir(build_dir))


def _int_list(text: str, option: str) -> tuple[int, ...]:
    """`1,16` -> (1, 16); errors name the option (`--batch: expected ...`)."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise RnnxError(f"{option}: expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise RnnxError(f"{option}: expected positive integers, got {text!r}")
    return values


@main.command()
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.option(
    "--runtime",
    "runtimes",
    multiple=True,
    type=click.Choice(list(targets())),
    help="Runtimes to measure (repeatable; default: every one the export and machine have).",
)
@click.option(
    "--provider",
    "providers",
    default="cpu",
    show_default=True,
    help="onnxruntime providers / torch devices to compare, e.g. cpu,cuda:0.",
)
@_measure_options(repeats=BenchOptions.repeats)
@click.option(
    "--chunk",
    "chunks",
    default=None,
    help="Streaming mode: per-chunk latency for these chunk sizes, e.g. 1,10.",
)
@click.option(
    "--frame-rate",
    type=float,
    default=BenchOptions.frame_rate,
    show_default=True,
    help="Frames per second of a stream, for the real-time factor.",
)
@_json_path_option()
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Write a latency chart (PNG; needs matplotlib).",
)
@_trust_options
def bench(
    export_dir: Path,
    runtimes: tuple[str, ...],
    providers: str,
    batches: str,
    times: str,
    threads: str,
    chunks: str | None,
    frame_rate: float,
    repeats: int,
    json_path: Path | None,
    csv_path: Path | None,
    plot_path: Path | None,
    trust: Any,
) -> None:
    """Latency of EXPORT_DIR across runtimes, side by side with eager and the machine's floor."""
    from rnnx.benchmark import bench as run_bench
    from rnnx.benchmark import configurations
    from rnnx.benchmark.report import format_table, plot, write_csv
    from rnnx.core.manifest import write_json

    options = BenchOptions(
        runtimes=runtimes or None,
        providers=tuple(p.strip() for p in providers.split(",") if p.strip()),
        batches=_int_list(batches, "--batch"),
        times=_int_list(times, "--time"),
        threads=_int_list(threads, "--threads"),
        chunks=_int_list(chunks, "--chunk") if chunks else (),
        frame_rate=frame_rate,
        repeats=repeats,
        trust=trust,
    )
    with click.progressbar(
        length=configurations(options), label="benchmarking", file=sys.stderr
    ) as bar:
        rows = run_bench(export_dir, options, progress=bar.update)
    click.echo(format_table(rows))
    if json_path:
        write_json(json_path, [r.to_dict() for r in rows])
    if csv_path:
        write_csv(rows, csv_path)
    if plot_path:
        plot(rows, plot_path, title=str(export_dir))


@main.command()
@click.argument("export_dir", type=click.Path(path_type=Path))
@_measure_options(repeats=20)
@_trust_options
def tune(
    export_dir: Path, batches: str, times: str, threads: str, repeats: int, trust: Any
) -> None:
    """Find the fastest verified runtime for EXPORT_DIR per shape; record it for load "auto"."""
    from rnnx.benchmark.report import format_table
    from rnnx.tune import TuneOptions
    from rnnx.tune import tune as run_tune

    options = TuneOptions(
        batches=_int_list(batches, "--batch"),
        times=_int_list(times, "--time"),
        threads=_int_list(threads, "--threads"),
        repeats=repeats,
        trust=trust,
    )
    result = run_tune(export_dir, options)
    click.echo(format_table(result.rows))
    for name, reason in result.rejected.items():
        click.echo(f"not a candidate: {name}: {reason}")
    for choice in result.choices:
        shape = f"batch {choice['batch']}, time {choice['time']}, {choice['threads']} thread(s)"
        click.echo(f"{shape}: {choice['target']} ({choice['p50_ms']:.3f} ms p50)")
    click.echo(f'recorded in {export_dir}/rnnx.json: rnnx.load(dir, "auto", batch=N) opens it')


@main.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@_checkpoint_options
def doctor(checkpoint: Path, load_options: Any) -> None:
    """Find export hazards in CHECKPOINT's model and say how to fix each (exit 1 if any)."""
    from rnnx.doctor import doctor as run_doctor
    from rnnx.exporter.checkpoint import load_checkpoint

    module = load_checkpoint(checkpoint, load_options).module
    findings = run_doctor(module)
    for finding in findings:
        click.echo(f"{finding.hazard:<13} {finding.message}")
        click.echo(f"{'':<13} fix: {finding.fix}")
    if findings:
        raise RnnxError(f"{len(findings)} export hazard(s) found in {checkpoint}")
    click.echo(f"no export hazards found in {checkpoint}")


_SERVING = TritonOptions()


def _serving_options(command: Any) -> Any:
    """Options of the Triton model (`rnnx triton`, `rnnx serve`), folded into TritonOptions."""

    @click.option("--name", "model_name", default=None, help="Model name [default: DIR's name].")
    @_runtime_option(_SERVING.runtime, "The rnnx runtime inside the server (python flavour).")
    @_provider_option()
    @_threads_option("Intra-op threads per instance.")
    @click.option("--instances", type=int, default=_SERVING.instances, show_default=True)
    @click.option(
        "--max-batch",
        type=int,
        default=_SERVING.max_batch,
        show_default=True,
        help="Sequences batched into one model call.",
    )
    @click.option(
        "--max-sequences",
        type=int,
        default=_SERVING.max_sequences,
        show_default=True,
        help="Concurrent sequences per instance; more wait for a free slot.",
    )
    @click.option(
        "--idle-timeout",
        type=float,
        default=_SERVING.idle_timeout_s,
        show_default=True,
        help="Seconds without a request after which a sequence is dropped.",
    )
    @_trust_checkpoint_option(
        "Let the server open a runtime that runs code from the export (aoti: a compiled pt2)."
    )
    @functools.wraps(command)
    def with_serving(**kwargs: Any) -> Any:
        names = ("model_name", "runtime", "provider", "threads", "instances", "max_batch",
                 "max_sequences", "trust_checkpoint")  # fmt: skip
        fields = {name: kwargs.pop(name) for name in names}
        fields["idle_timeout_s"] = kwargs.pop("idle_timeout")
        kwargs["options"] = fields
        return command(**kwargs)

    return with_serving


@main.command()
@click.argument("export_dir", type=click.Path(path_type=Path))
@_output_option("repository", "The model repository to write (a directory).")
@click.option(
    "--flavour",
    type=click.Choice(FLAVOURS),
    default=_SERVING.flavour,
    show_default=True,
    help="python: Triton's python backend runs rnnx; onnxruntime: Triton's ORT backend, "
    "implicit state.",
)
@_force_option("repository")
@_serving_options
def triton(
    export_dir: Path, repository: Path, flavour: str, force: bool, options: dict[str, Any]
) -> None:
    """Write EXPORT_DIR as a Triton Inference Server model repository (sequence batching)."""
    from rnnx.serving.triton import write_repository

    model = write_repository(
        export_dir, repository, TritonOptions(flavour=flavour, force=force, **options)
    )
    click.echo(f"wrote {model} (tritonserver --model-repository {repository})")


@main.command()
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.option("--http-port", type=int, default=8000, show_default=True)
@click.option("--grpc-port", type=int, default=8001, show_default=True)
@_serving_options
def serve(export_dir: Path, http_port: int, grpc_port: int, options: dict[str, Any]) -> None:
    """Serve EXPORT_DIR on a local Triton Inference Server until Ctrl-C (rnnx[serve] extra)."""
    from rnnx.serving.server import serve as run_server

    run_server(export_dir, TritonOptions(**options), http_port, grpc_port, announce=click.echo)


@main.command("web")
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", "site", type=click.Path(path_type=Path), required=True,
    help="The folder to write the site to.",
)  # fmt: skip
@click.option(
    "--format",
    "format_name",
    type=click.Choice(["onnx", "onnx-int8"]),
    default="onnx",
    show_default=True,
    help="The artifact the site runs.",
)
@click.option("--force", is_flag=True, help="Replace a site that rnnx web wrote before.")
def web(export_dir: Path, site: Path, format_name: str, force: bool) -> None:
    """Write EXPORT_DIR as a static site: the model, onnxruntime-web, rnnx.mjs, a demo page."""
    from rnnx.web_bundle import WebOptions, write_site

    page = write_site(export_dir, site, WebOptions(format=format_name, force=force))
    click.echo(f"wrote {site}: serve it (python -m http.server -d {site}) and open {page.name}")


@main.command("env")
@_json_flag_option("lines")
def env_command(as_json: bool) -> None:
    """Versions, onnxruntime providers, the C++ build and CPU features: for bug reports."""
    from rnnx.env import collect, format_text

    info = collect()
    click.echo(json.dumps(info, indent=2) if as_json else format_text(info))


@main.command("inspect")
@click.argument("path", type=click.Path(path_type=Path))
@_json_flag_option("tables")
def inspect_command(path: Path, as_json: bool) -> None:
    """Show what PATH holds: an export directory, an ONNX file or an rnnx TorchScript file."""
    from rnnx.inspect import format_text, inspect

    inspection = inspect(path)
    if as_json:
        click.echo(json.dumps(inspection.to_dict(), indent=2))
    else:
        click.echo(format_text(inspection))


def _print_report(report: Any) -> None:
    reduced = "".join(
        f"; {name} models: atol {atol:g}, rtol {rtol:g}"
        for name, (atol, rtol) in report.reduced_precision.items()
    )
    click.echo(
        f"verification against eager PyTorch (atol {report.atol:g}, rtol {report.rtol:g}{reduced}):"
    )
    for artifact, row in report.summary().items():
        status = "PASS" if row["passed"] else "FAIL"
        click.echo(
            f"  {status} {artifact:<21} {row['cases']:>3} checks  "
            f"max abs {row['max_abs_error']:.2e}  max rel {row['max_rel_error']:.2e}"
        )
        for reason in row.get("skipped", ()):
            click.echo(f"       {artifact}: a check skipped: {reason}")
