"""Facts about the machine that travel with a verification: its CPU class and runtime versions.

int8 and bf16 numerics depend on the instruction set the kernels were chosen for: onnxruntime's
u8×s8 int8 GEMM saturates on CPUs without VNNI, bf16 runs natively only with AVX512-BF16 or
AMX. So a verification is a claim about a CPU class, and every record of one names it; readers
(inspect, load, verify, C++) compare it with the machine they run on.

The class is read from /proc/cpuinfo (no torch, no onnxruntime). ONEDNN_MAX_CPU_ISA, which
caps oneDNN's kernels (eager PyTorch and OpenVINO) to a lower class, caps the class seen here
too, so the precisions offered follow what those engines will run. onnxruntime has no such
cap: `emulated` records a verification run under an emulator presenting another class.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

# The /proc/cpuinfo flags that decide which kernels (and so which numerics and speed) run.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile")

# CPU classes, lowest first, each with the flags it needs. A machine is of the highest class
# whose flags it has.
CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("x86-64", ()),
    ("avx2", ("avx2", "fma")),
    ("avx2-vnni", ("avx2", "fma", "avx_vnni")),
    ("avx512", ("avx2", "fma", "avx512f")),
    ("avx512-vnni", ("avx2", "fma", "avx512f", "avx512_vnni")),
    ("avx512-vnni-bf16", ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16")),
)
# ONEDNN_MAX_CPU_ISA values (oneDNN's names, case-insensitive) -> the flags they leave on
_ONEDNN_CAPS = {
    "sse41": (),
    "avx": (),
    "avx2": ("avx2", "fma"),
    "avx2_vnni": ("avx2", "fma", "avx_vnni"),
    "avx512_core": ("avx2", "fma", "avx512f"),
    "avx512_core_vnni": ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni"),
    "avx512_core_bf16": ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16"),
}
# Runtimes whose versions a verification names (distribution names; onnxruntime: any wheel).
RUNTIME_PACKAGES = {
    "torch": ("torch",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"),
    "openvino": ("openvino",),
    "numpy": ("numpy",),
}


@dataclasses.dataclass(frozen=True)
class MachineFacts:
    cpu_class: str  # one of CLASSES' names, or the architecture on non-x86 machines
    flags: tuple[str, ...]  # the CPU_FLAGS present (after ONEDNN_MAX_CPU_ISA)
    model: str | None = None
    versions: Mapping[str, str] = dataclasses.field(default_factory=dict)
    emulated: bool = False  # the ISA was presented by an emulator (see runtimes/emulated.py)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_class": self.cpu_class,
            "flags": list(self.flags),
            "model": self.model,
            "versions": dict(self.versions),
            "emulated": self.emulated,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MachineFacts:
        flags = data.get("flags") or []
        versions = data.get("versions") or {}
        if not (
            isinstance(data.get("cpu_class"), str)
            and isinstance(flags, list)
            and all(isinstance(f, str) for f in flags)
            and isinstance(versions, Mapping)
        ):
            raise ValueError("a machine record needs cpu_class, flags and versions")
        model = data.get("model")
        return cls(
            cpu_class=data["cpu_class"],
            flags=tuple(flags),
            model=model if isinstance(model, str) else None,
            versions={str(k): str(v) for k, v in versions.items()},
            emulated=bool(data.get("emulated")),
        )


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[set[str], str | None]:
    """All flags of the first CPU in /proc/cpuinfo and its model name (empty where absent)."""
    flags: set[str] = set()
    model = None
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("flags", "Features") and not flags:
            flags = set(value.split())
        elif key == "model name" and model is None:
            model = value.strip()
    return flags, model


def classify(flags: set[str] | tuple[str, ...], architecture: str | None = None) -> str:
    """The CPU class of a machine with these flags (x86-64 classes; else the architecture)."""
    architecture = architecture or platform.machine()
    if architecture.lower() not in ("x86_64", "amd64", "i686", "x86"):
        return architecture.lower()
    name = CLASSES[0][0]
    for candidate, needs in CLASSES:
        if all(flag in flags for flag in needs):
            name = candidate
    return name


def capped(flags: set[str]) -> set[str]:
    """The flags left by ONEDNN_MAX_CPU_ISA (oneDNN's own cap on its kernels), if set."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "")).lower()
    if cap in ("", "all") or cap.startswith("avx10") or cap.startswith("avx512_core_amx"):
        return flags
    allowed = _ONEDNN_CAPS.get(cap)
    if allowed is None:
        return flags
    return {f for f in flags if f not in CPU_FLAGS or f in allowed}


@functools.cache
def this_machine() -> MachineFacts:
    """This machine's facts (read once per process)."""
    flags, model = cpu_flags()
    flags = capped(flags)
    return MachineFacts(
        cpu_class=classify(flags),
        flags=tuple(f for f in CPU_FLAGS if f in flags),
        model=model or platform.processor() or None,
        versions=runtime_versions(),
    )


def runtime_versions() -> dict[str, str]:
    """Installed versions of the runtimes (from package metadata: nothing is imported)."""
    versions = {}
    for name, distributions in RUNTIME_PACKAGES.items():
        for distribution in distributions:
            try:
                versions[name] = metadata.version(distribution)
            except metadata.PackageNotFoundError:
                continue
            break
    return versions


def has_vnni(facts: MachineFacts) -> bool:
    """Whether onnxruntime's int8 GEMM takes its VNNI kernels here (no 16-bit saturation)."""
    return "avx512_vnni" in facts.flags or "avx_vnni" in facts.flags


def verified_record(facts: MachineFacts, labels: list[str], passed: bool) -> dict[str, Any]:
    """One entry of a manifest's `verified_on`: which artifacts passed on which machine."""
    return {
        **facts.to_dict(),
        "artifacts": sorted(labels),
        "passed": passed,
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
