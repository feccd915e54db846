"""`rnnx triton`: an export directory as a Triton Inference Server model repository.

Two flavours, both with Triton's sequence batcher (requests of one sequence reach the state
that belongs to it; requests of many sequences are batched together, Oldest strategy):
- "python": Triton's python backend runs rnnx itself (rnnx.serving.triton_backend): one rnnx
  stream per correlation id, any rnnx runtime and provider. Runs wherever Triton runs.
- "onnxruntime": Triton's onnxruntime backend runs the ONNX graph with implicit state (Triton
  keeps the states between requests); the graph is rewritten for it (rnnx.serving.implicit_state).

config.pbtxt is built with Triton's own protobuf (rnnx.serving.config).
"""

from __future__ import annotations

import os
import re
import shutil
import site
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from rnnx.core.errors import RnnxError, first_line
from rnnx.core.limits import MAX_THREADS, check_threads, is_count, shown
from rnnx.core.manifest import read_manifest
from rnnx.core.paths import check_directory_name, copy_export
from rnnx.core.signature import Signature
from rnnx.formats import artifact_path, check_code_trust, get_runtime
from rnnx.serving.config import TritonOptions, add_control, add_tensor, base_config
from rnnx.serving.implicit_state import write_onnx_model
from rnnx.serving.sequences import check_servable

FLAVOURS = ("python", "onnxruntime")
VERSION = "1"  # the one model version a repository holds


def model_name(export_dir: str | os.PathLike, options: TritonOptions) -> str:
    """The model's directory name in the repository: --name as given (one plain name, checked),
    or the export directory's name with other characters as '_'."""
    if options.model_name is not None:
        return check_directory_name(options.model_name, "--name")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(export_dir).resolve().name).lstrip(".")
    return name or "model"


def write_repository(
    export_dir: str | os.PathLike, repository: str | os.PathLike, options: TritonOptions
) -> Path:
    """Write a model repository for `export_dir` at `repository`; returns the model directory.

    Written in a temporary sibling directory and renamed into place: never half a repository.
    """
    _check(options)
    manifest = read_manifest(export_dir)
    check_servable(manifest.signature, str(export_dir))
    name = model_name(export_dir, options)
    target = Path(repository)
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        if not options.force:
            raise RnnxError(f"output '{target}' already exists; pass --force to replace it")
        if not target.is_dir() or not all((p / "config.pbtxt").exists() for p in target.iterdir()):
            raise RnnxError(f"output '{target}' is not a Triton model repository; not replacing it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as error:
        raise RnnxError(f"cannot create output '{target}': {error.strerror}") from error
    try:
        staging.chmod(0o755)
        version = staging / name / VERSION
        version.mkdir(parents=True)
        if options.flavour == "python":
            config = _python_model(export_dir, manifest, version, name, options)
        else:
            config = write_onnx_model(export_dir, manifest, version, name, options)
        (staging / name / "config.pbtxt").write_text(config)
        old = None
        if target.exists():  # moved aside, not removed first: never no repository at all
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as error:
        raise RnnxError(f"cannot write repository '{target}': {first_line(error)}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / name


def _check(options: TritonOptions) -> None:
    if options.flavour not in FLAVOURS:
        raise RnnxError(f"--flavour must be one of {', '.join(FLAVOURS)}, not {options.flavour!r}")
    get_runtime(options.runtime)  # an unknown runtime is an error now, not in the server
    if options.threads is not None:
        check_threads(options.threads, "--threads")
    # bounded as config.pbtxt's int32 fields are (protobuf would raise on more)
    for option, value, most in (("--instances", options.instances, MAX_THREADS),
                                ("--max-batch", options.max_batch, 2**31 - 1),
                                ("--max-sequences", options.max_sequences, 2**31 - 1)):  # fmt: skip
        if not is_count(value, most):
            raise RnnxError(f"{option} must be an integer from 1 to {most}, got {shown(value)}")
    if not 0 < options.idle_timeout_s <= 10**9:  # NaN fails this too
        raise RnnxError(
            f"--idle-timeout must be positive seconds (at most 1e9), got {options.idle_timeout_s:g}"
        )


def _python_model(
    export_dir: str | os.PathLike, manifest: Any, version: Path, name: str, options: TritonOptions
) -> str:
    from google.protobuf import text_format

    runtime = get_runtime(options.runtime)
    check_code_trust(runtime, export_dir, options)  # aoti: only with --trust-checkpoint
    artifact_path(export_dir, manifest, runtime.formats[0], runtime)  # the server would fail later
    copy_export(export_dir, version / "export")  # never what a link points to outside it
    (version / "model.py").write_text(model_py())
    config = base_config(name, "python", options)
    signature: Signature = manifest.signature
    for tensor in signature.data_inputs:
        add_tensor(config.input, tensor)
    states = {o for o, _ in signature.state_pairs}
    for tensor in signature.outputs:
        if tensor.name not in states:
            add_tensor(config.output, tensor)
    for control, kind in (("START", "CONTROL_SEQUENCE_START"), ("END", "CONTROL_SEQUENCE_END"),
                          ("READY", "CONTROL_SEQUENCE_READY"),
                          ("CORRID", "CONTROL_SEQUENCE_CORRID")):  # fmt: skip
        add_control(config, control, kind, "TYPE_UINT64")
    parameters = {
        "runtime": options.runtime,
        "provider": options.provider,
        "threads": str(options.threads or ""),
        "trust_checkpoint": "true" if options.trust_checkpoint else "",
        # Triton drops an idle sequence's slot without telling the model (Oldest strategy); the
        # model frees the state later than Triton so that no request Triton still routes to a
        # live sequence finds its state gone.
        "model_idle_timeout_s": f"{2 * options.idle_timeout_s:g}",
    }
    for key, value in parameters.items():
        config.parameters[key].string_value = value
    return text_format.MessageToString(config)


def model_py() -> str:
    """model.py for Triton's python backend: the stub runs its own interpreter, which does not
    see this environment's packages; they are added (with their .pth files, for editable
    installs) before anything imports numpy or triton_python_backend_utils."""
    paths = [p for p in dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"],
                                       sysconfig.get_paths()["platlib"]])]  # fmt: skip
    return (
        '"""Written by `rnnx triton`: serves ./export with rnnx (settings: config.pbtxt)."""\n\n'
        "import os\nimport site\n\n"
        "# this environment's site-packages, where rnnx and its runtimes are installed\n"
        f"SITE_PACKAGES = {paths!r}\n"
        "for path in SITE_PACKAGES:\n"
        "    if os.path.isdir(path):\n"
        "        site.addsitedir(path)\n\n"
        "from rnnx.serving.triton_backend import TritonPythonModel  # noqa: E402, F401\n"
    )
