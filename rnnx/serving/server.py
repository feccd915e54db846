"""Start and stop a real `tritonserver` on localhost over a model repository.

The binary comes from the `nvidia-pytriton` wheel (the rnnx[serve] extra), which ships it with
the python backend and one python-backend stub per Python version; the backend directory is
laid out here (the stub for this interpreter's version next to the backend library), as
pytriton itself does. A `tritonserver` on PATH (Triton's container) is used when the wheel
is not installed. The server runs in its own process group so that stopping it also ends the
python-backend stubs it forked: no orphans.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

from rnnx.core.errors import RnnxError
from rnnx.core.limits import is_count, shown
from rnnx.core.manifest import read_manifest
from rnnx.core.signature import Signature
from rnnx.serving.config import DATA_TYPES, TritonOptions
from rnnx.serving.triton import write_repository

SERVE_HINT = "pip install 'rnnx[serve]' (the nvidia-pytriton wheel ships tritonserver)"
HOST = "127.0.0.1"


@dataclasses.dataclass(frozen=True)
class Binary:
    executable: Path
    backends: Path | None  # a pytriton backend tree to lay out; None: the binary's default


def find_tritonserver() -> Binary:
    spec = find_spec("pytriton")
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
        if (root / "bin" / "tritonserver").is_file():
            return Binary(root / "bin" / "tritonserver", root)
    found = shutil.which("tritonserver")
    if found:
        return Binary(Path(found), None)
    raise RnnxError(f"no tritonserver binary found: {SERVE_HINT}")


def lay_out_backends(binary: Binary, directory: Path) -> Path:
    """A backend directory whose python backend has the stub for this interpreter's version."""
    assert binary.backends is not None
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = binary.backends / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise RnnxError(f"the installed tritonserver has no python backend for Python {version}")
    python = directory / "backends" / "python"
    python.mkdir(parents=True)
    for entry in [*(binary.backends / "backends" / "python").iterdir(), stub]:
        if entry.is_file():
            # links, not copies: the stub finds the wheel's bundled libraries (libcudart)
            # relative to where it really is
            (python / entry.name).symlink_to(entry)
    return directory / "backends"


def port_free(port: int) -> bool:
    """Whether nothing listens on `port` (connections of a stopped server lingering in
    TIME_WAIT do not count: servers bind with SO_REUSEADDR, so does this probe)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nothing listens on now (for tests and `--http-port 0`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def check_ports(http_port: int, grpc_port: int) -> None:
    """Ports are 0 (any free one) to 65535; one line naming the option otherwise."""
    for option, port in (("--http-port", http_port), ("--grpc-port", grpc_port)):
        if not is_count(port, 65535, 0):
            raise RnnxError(f"{option} must be a port from 0 to 65535, got {shown(port)}")
    if http_port and http_port == grpc_port:
        raise RnnxError(f"--http-port and --grpc-port are both {http_port}: give two ports")


class Server:
    """A running tritonserver; a context manager that stops it (and its stubs) on exit."""

    def __init__(
        self,
        repository: str | os.PathLike,
        http_port: int = 8000,
        grpc_port: int = 8001,
        log: str | os.PathLike | None = None,
        ready_timeout_s: float = 120.0,
    ) -> None:
        check_ports(http_port, grpc_port)
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        for option, port in (("--http-port", self.http_port), ("--grpc-port", self.grpc_port)):
            if not port_free(port):
                raise RnnxError(f"{option} {port}: the port is in use on {HOST}")
        binary = find_tritonserver()
        self.workspace = Path(tempfile.mkdtemp(prefix="rnnx-triton-"))
        self.log_path = Path(log) if log else self.workspace / "tritonserver.log"
        command = [
            str(binary.executable), f"--model-repository={Path(repository).resolve()}",
            f"--http-address={HOST}", f"--http-port={self.http_port}",
            f"--grpc-address={HOST}", f"--grpc-port={self.grpc_port}",
            "--allow-metrics=false", "--exit-timeout-secs=5", "--strict-readiness=true",
        ]  # fmt: skip
        if binary.backends is not None:
            command.append(f"--backend-directory={lay_out_backends(binary, self.workspace)}")
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() reaches the stubs too
            )  # fmt: skip
        # a script that dies before stop() must not leave the server running
        atexit.register(self.stop)
        try:
            self._wait_ready(ready_timeout_s)
        except BaseException:
            self.stop()
            raise

    @property
    def http_url(self) -> str:
        return f"{HOST}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        url = f"http://{self.http_url}/v2/health/ready"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RnnxError(
                    f"tritonserver exited with code {self.process.returncode}: {self.last_error()}"
                )
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(url, timeout=1) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.2)
        raise RnnxError(f"tritonserver not ready after {timeout_s:g} s: {self.last_error()}")

    def last_error(self) -> str:
        """The server log's most telling line (its last error, else its last line)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return f"no log at {self.log_path}"
        errors = [line for line in lines if line.startswith("E") or "error" in line.lower()]
        return (errors or lines or ["(empty log)"])[-1].strip()[:300]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM to the server's process group, SIGKILL after `timeout_s`; idempotent."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout_s)
        # the stubs are in the group too, and may outlive the server by a moment
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        shutil.rmtree(self.workspace, ignore_errors=True)
        atexit.unregister(self.stop)

    def kill(self) -> None:
        """Kill the server and its stubs at once (a crash, for the fault tests)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Stopped(KeyboardInterrupt):
    """SIGTERM arrived while serving (raised to unwind and stop the server)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Stopped(f"signal {signum}")


def serve(
    export_dir: str | os.PathLike,
    options: TritonOptions,
    http_port: int = 8000,
    grpc_port: int = 8001,
    announce: Callable[[str], None] = print,
) -> None:
    """`rnnx serve`: a python-backend repository in a temporary directory, served by a real
    tritonserver until Ctrl-C or SIGTERM (then the server and its stubs are stopped)."""
    check_ports(http_port, grpc_port)  # before the repository is written
    with tempfile.TemporaryDirectory(prefix="rnnx-serve-") as temporary:
        repository = Path(temporary) / "repository"
        model = write_repository(export_dir, repository, options)
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            with Server(repository, http_port, grpc_port) as server:
                announce(
                    f"serving {export_dir} as model {model.name!r} "
                    f"(HTTP {server.http_url}, gRPC {server.grpc_url}); Ctrl-C stops it"
                )
                announce(client_example(read_manifest(export_dir).signature, model.name,
                                        server.grpc_url))  # fmt: skip
                while server.process.poll() is None:
                    time.sleep(0.5)
                raise RnnxError(
                    f"tritonserver exited with code {server.process.returncode}: "
                    f"{server.last_error()}"
                )
        except KeyboardInterrupt:
            announce("stopped")
        finally:
            signal.signal(signal.SIGTERM, previous)


def client_example(signature: Signature, model: str, url: str) -> str:
    """Ten lines of tritonclient that stream one sequence in chunks (printed by `rnnx serve`)."""
    tensor = signature.data_inputs[0]
    sizes = {"batch": 1, "time": 10}
    shape = [sizes.get(d, 1) if isinstance(d, str) else d for d in tensor.dims]
    shape.insert(0, shape.pop(tensor.dims.index("batch")))  # batch first, as Triton sends it
    output = next(o.name for o in signature.outputs if o.name not in dict(signature.state_pairs))
    return "\n".join([
        "import numpy as np",
        "import tritonclient.grpc as grpcclient",
        f'client = grpcclient.InferenceServerClient("{url}")',
        f"chunks = [np.random.rand(*{shape}).astype(np.{tensor.dtype}) for _ in range(3)]",
        "for i, chunk in enumerate(chunks):  # one sequence, id 42; chunks of any length",
        f'    feed = grpcclient.InferInput("{tensor.name}", chunk.shape, '
        f'"{DATA_TYPES[tensor.dtype].removeprefix("TYPE_")}")',
        "    feed.set_data_from_numpy(chunk)",
        f'    result = client.infer("{model}", [feed], sequence_id=42, sequence_start=i == 0,',
        "                          sequence_end=i == len(chunks) - 1)",
        f'    print(result.as_numpy("{output}").shape)',
    ])  # fmt: skip
