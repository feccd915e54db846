"""`rnnx env`: one screen for bug reports and for choosing a runtime.

Versions come from the installed distributions' metadata (importlib.metadata), so torch is never
imported; onnxruntime and OpenVINO are imported only to ask what they can run on (providers,
devices), and a failure to import them is reported, not raised.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from rnnx import cpp_build
from rnnx.core.machine import CPU_FLAGS, capped, classify, cpu_flags
from rnnx.core.version import __version__

# Distributions reported, by the name shown. onnxruntime: whichever wheel provides the module.
PACKAGES = {
    "torch": ("torch",),
    "onnx": ("onnx",),
    "onnxscript": ("onnxscript",),
    "onnx-ir": ("onnx-ir",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"),
    "numpy": ("numpy",),
    "openvino": ("openvino",),
}


def collect() -> dict[str, Any]:
    """Everything `rnnx env` shows, as one JSON-ready dictionary."""
    return {
        "rnnx": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "packages": {name: _version(dists) for name, dists in PACKAGES.items()},
        "onnxruntime_providers": _onnxruntime_providers(),
        "openvino_devices": _openvino_devices(),
        "cpp": cpp_build.state(),
        "cpu": cpu_info(),
    }


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """Core count, model name, the CPU_FLAGS present and the CPU class (rnnx/core/machine.py)
    that verifications record (flags empty where /proc/cpuinfo is absent)."""
    flags, model = cpu_flags(cpuinfo)
    seen = capped(flags)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "model": model or platform.processor() or None,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "flags": {flag: flag in seen for flag in CPU_FLAGS} if flags else {},
        "class": classify(seen),
    }


def format_text(info: dict[str, Any]) -> str:
    """The human screen: aligned `name  value` lines, grouped."""
    rows: list[tuple[str, str]] = [("rnnx", info["rnnx"]), ("python", info["python"])]
    rows.append(("platform", info["platform"]))
    # What each runtime can run on, under its version.
    below = {
        "onnxruntime": ("  providers", "onnxruntime_providers"),
        "openvino": ("  devices", "openvino_devices"),
    }
    for name, version in info["packages"].items():
        rows.append((name, version or "not installed"))
        label, key = below.get(name, ("", ""))
        found = info.get(key)
        if found is not None:
            rows.append((label, ", ".join(found) if isinstance(found, list) else found))
    cpp = info["cpp"]
    rows.append(("c++ sources", cpp["sources"] or "missing"))
    rows.append(("c++ build", cpp["build_dir"] + ("" if cpp["built"] else " (not built)")))
    for runtime, path in cpp["runners"].items():
        rows.append((f"  {runtime}", path))
    rows.append(("c++ prefix", cpp["prefix"] or "none (rnnx cpp build installs one)"))
    cpu = info["cpu"]
    rows.append(("cpu", cpu["model"] or "unknown"))
    rows.append(("cpu class", cpu["class"]))
    cores = f"{cpu['cores']}" + (
        f" ({cpu['usable_cores']} usable)"
        if cpu["usable_cores"] not in (None, cpu["cores"])
        else ""
    )
    rows.append(("cores", cores))
    flags = cpu["flags"]
    if flags:
        rows.append(("cpu flags", " ".join(f"{f}{'+' if on else '-'}" for f, on in flags.items())))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _version(distributions: tuple[str, ...]) -> str | None:
    for name in distributions:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        return version if name == distributions[0] else f"{version} ({name})"
    return None


def _onnxruntime_providers() -> list[str] | str | None:
    if _version(PACKAGES["onnxruntime"]) is None:
        return None
    try:
        import onnxruntime
    except Exception as error:  # reported, not raised: this screen is for broken setups too
        return f"import failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
    return list(onnxruntime.get_available_providers())


def _openvino_devices() -> list[str] | str | None:
    if _version(PACKAGES["openvino"]) is None:
        return None
    try:
        import openvino

        return list(openvino.Core().available_devices)
    except Exception as error:
        return f"failed: {type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]}"
