"""onnxruntime on another CPU class than this one, through qemu-user, for verification.

onnxruntime picks its kernels from CPUID at start and offers no way to cap them (oneDNN's
ONEDNN_MAX_CPU_ISA caps eager PyTorch and OpenVINO, not onnxruntime's MLAS). qemu-user runs the
same Python and the same onnxruntime wheel on a CPU model of the class asked for, so the very
kernels an AVX2-only machine would take run here, slowly: an int8 artifact exported on a VNNI
machine is verified for the AVX2 machines it will be deployed to (`rnnx verify DIR
--emulate-cpu avx2`). The session lives in a worker process (ort_worker.py); only the
onnxruntime session is emulated, the eager reference runs natively.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from rnnx.core.errors import RnnxError
from rnnx.core.machine import MachineFacts, runtime_versions

# CPU classes that can be emulated: qemu's CPU model, and the flags it presents. TCG (qemu's
# emulator) implements AVX2 and FMA since qemu 7.2 but neither AVX-512 nor VNNI, so the lower
# class is what it emulates; the higher ones are real machines.
EMULATED = {"avx2": ("Haswell-v4", ("avx2", "fma"))}
QEMU = "qemu-x86_64"
_WORKER = Path(__file__).with_name("ort_worker.py")


def emulated_machine(cpu: str) -> MachineFacts:
    """The facts a verification under emulation of `cpu` records."""
    check_emulation(cpu)
    return MachineFacts(
        cpu_class=cpu,
        flags=EMULATED[cpu][1],
        model=f"qemu {EMULATED[cpu][0]}",
        versions=runtime_versions(),
        emulated=True,
    )


def check_emulation(cpu: str) -> None:
    if cpu not in EMULATED:
        raise RnnxError(f"--emulate-cpu must be one of {', '.join(EMULATED)}, got {cpu!r}")
    if platform.machine().lower() not in ("x86_64", "amd64"):
        raise RnnxError(f"--emulate-cpu runs x86-64 code under qemu: this is {platform.machine()}")
    if shutil.which(QEMU) is None:
        raise RnnxError(
            f"--emulate-cpu {cpu} needs {QEMU} (Debian/Ubuntu: apt-get install qemu-user)"
        )


class _Value:
    """What InferenceSession.get_inputs()/get_outputs() give: something with a name."""

    def __init__(self, name: str) -> None:
        self.name = name


class EmulatedInferenceSession:
    """The part of onnxruntime.InferenceSession that OnnxRuntimeSession uses, run by a worker
    process under qemu-user presenting `cpu`."""

    def __init__(self, path: str | os.PathLike, cpu: str, settings: dict[str, Any]) -> None:
        check_emulation(cpu)
        self.cpu = cpu
        command = [QEMU, "-cpu", EMULATED[cpu][0], sys.executable, str(_WORKER),
                   os.fspath(path), json.dumps(settings)]  # fmt: skip
        # qemu prints a warning per CPUID feature its TCG lacks (pcid, x2apic, ...): noise
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        hello = self._receive(f"onnxruntime under {QEMU} cannot load '{path}'")
        names = json.loads(str(hello["names"]))
        self._inputs = names["inputs"]
        self._outputs = names["outputs"]
        self._providers = names["providers"]

    def get_inputs(self) -> list[_Value]:
        return [_Value(n) for n in self._inputs]

    def get_outputs(self) -> list[_Value]:
        return [_Value(n) for n in self._outputs]

    def get_providers(self) -> list[str]:
        return list(self._providers)

    def run(self, output_names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        keys = list(feeds)
        arrays = {f"in{i}": np.ascontiguousarray(feeds[k]) for i, k in enumerate(keys)}
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.array(json.dumps(keys)), **arrays)
        data = buffer.getvalue()
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(struct.pack("<I", len(data)) + data)
            self._process.stdin.flush()
        except OSError as error:
            raise RnnxError(f"the emulated onnxruntime process ended: {error}") from error
        reply = self._receive("onnxruntime under emulation failed")
        outputs = dict(zip(self._outputs, (reply[f"out{i}"] for i in range(len(self._outputs)))))
        return [outputs[name] for name in output_names]

    def _receive(self, context: str) -> dict[str, np.ndarray]:
        stdout = self._process.stdout
        assert stdout is not None
        header = stdout.read(4)
        if len(header) < 4:
            code = self._process.wait()
            raise RnnxError(f"{context}: the {QEMU} worker exited with code {code}")
        (size,) = struct.unpack("<I", header)
        with np.load(io.BytesIO(stdout.read(size)), allow_pickle=False) as archive:
            reply = {name: archive[name] for name in archive.files}
        if "error" in reply:
            message = str(reply["error"]).strip().splitlines() or ["unknown error"]
            raise RuntimeError(message[0])
        return reply

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()  # type: ignore[union-attr]
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown the pipes may be gone
            self.close()
