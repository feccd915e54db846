"""`rnnx serve`: a real tritonserver behind one command; its printed example runs; SIGTERM
stops everything it started; a port in use is one line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from rnnx.serving.server import free_port
from tests.serving.helpers import tritonserver_or_skip

RNNX = [str(Path(sys.executable).parent / "rnnx")]


def processes_with(text: str) -> list[int]:
    """Live (not zombie) processes whose command line contains `text`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in command and state != "Z":
            found.append(int(proc.name))
    return found


def test_serve_prints_a_working_example_and_stops_cleanly(served_model, tmp_path) -> None:
    tritonserver_or_skip()
    http, grpc = free_port(), free_port()
    serving = subprocess.Popen(
        [*RNNX, "serve", str(served_model[1]), "--http-port", str(http), "--grpc-port", str(grpc)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        lines = [serving.stdout.readline() for _ in range(11)]
        assert lines[0].startswith("serving") and f"127.0.0.1:{grpc}" in lines[0], lines
        example = tmp_path / "example.py"
        example.write_text("".join(lines[1:]))
        ran = subprocess.run([sys.executable, str(example)], capture_output=True, text=True,
                             timeout=60)  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.splitlines() == ["(1, 10, 8)"] * 3
        server = processes_with(f"--grpc-port={grpc}")
        assert len(server) == 1
        busy = subprocess.run([*RNNX, "serve", str(served_model[1]), "--http-port", str(http)],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert busy.returncode == 1
        assert busy.stderr == f"rnnx: error: --http-port {http}: the port is in use on 127.0.0.1\n"
    finally:
        serving.send_signal(signal.SIGTERM)
        serving.wait(60)
    assert serving.returncode == 0
    assert serving.stdout.read().strip() == "stopped"
    # the server and the python-backend stubs it forked (they name its pid) are gone
    deadline = time.monotonic() + 10
    while processes_with(f"--grpc-port={grpc}") or processes_with(f" {server[0]} "):
        assert time.monotonic() < deadline, "tritonserver or its stubs outlived rnnx serve"
        time.sleep(0.2)
