"""Build the C++ runners in cpp/ (ONNX Runtime, and libtorch when asked): `rnnx cpp build`.

The ONNX Runtime SDK (headers + shared library) is assembled once by
cpp/scripts/assemble_onnxruntime_sdk.sh from the onnxruntime wheel and an npm package carrying
the official headers, unless ONNXRUNTIME_ROOT names one already (an official release archive).
libtorch comes from the installed torch wheel, which ships TorchConfig.cmake. Builds are
incremental: a second call only re-runs `cmake --build`, which does nothing when up to date.

This module is the one place that knows where the sources and builds are:

* sources: `cpp/` of a source checkout (an editable install), else the copy the wheel carries
  as package data, `rnnx/_cpp/` (setup.py puts it there);
* build: `cpp/build/` in a writable checkout (as always), else a per-user cache directory,
  `$XDG_CACHE_HOME/rnnx/cpp-<version>/` (default `~/.cache/rnnx/...`): never site-packages;
* CMake package: every build is installed into `<build>/prefix/` (`rnnx cpp prefix`), whose
  `lib/cmake/rnnx/rnnxConfig.cmake` lets a C++ project `find_package(rnnx)`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rnnx.core.errors import RnnxError
from rnnx.core.version import __version__
from rnnx.formats import RUNTIMES, Runtime

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent  # the repository root when rnnx runs from a source checkout
# A checkout (setup.cfg beside the package) builds its own cpp/; an installed wheel its copy.
IN_CHECKOUT = (_CHECKOUT / "setup.cfg").is_file() and (
    _CHECKOUT / "cpp" / "CMakeLists.txt"
).is_file()
SOURCE_DIR = _CHECKOUT / "cpp" if IN_CHECKOUT else _PACKAGE / "_cpp"
# The C++ runtimes of the registry: cpp-onnxruntime (rnnx-ort-run), cpp-torchscript, cpp-aoti.
CPP_RUNTIMES = [r for r in RUNTIMES.values() if r.runner is not None]
_CONFIGURE_STAMP = "rnnx-configure-args.txt"


def build(build_dir: Path | None = None, *, torch: bool = True, jobs: int = 2) -> dict[str, Path]:
    """Configure and build cpp/; returns the runner executables by runtime name
    (cpp-onnxruntime, cpp-torchscript, cpp-aoti).

    `torch=False` builds the ONNX Runtime runner only. Raises RnnxError with one line (and the
    path of the full log) when a tool is missing or the build fails.
    """
    if not (SOURCE_DIR / "CMakeLists.txt").is_file():
        raise RnnxError(
            f"C++ sources not found at {SOURCE_DIR}: reinstall rnnx from its wheel or sdist"
        )
    build_dir = Path(build_dir) if build_dir is not None else default_build_dir()
    build_dir = build_dir.resolve()
    cmake = _require("cmake", "cmake is not installed (apt install cmake, or pip install cmake)")
    _require_compiler()
    build_dir.mkdir(parents=True, exist_ok=True)
    log = build_dir / "build.log"
    log.write_text("")  # this call's output only, so its tail is this call's failure

    sdk = _onnxruntime_sdk(build_dir, log)
    args = [
        f"-DONNXRUNTIME_ROOT={sdk}",
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DRNNX_WITH_TORCH={'ON' if torch else 'OFF'}",
    ]
    if torch:
        args.append(f"-DCMAKE_PREFIX_PATH={_torch_cmake_prefix()}")
    if shutil.which("ninja") and not (build_dir / "CMakeCache.txt").exists():
        args += ["-G", "Ninja"]  # only when creating the build tree: generators cannot change

    stamp = build_dir / _CONFIGURE_STAMP
    configured = (build_dir / "CMakeCache.txt").exists() and stamp.exists()
    if not configured or stamp.read_text() != "\n".join(args):
        _run([cmake, "-S", str(SOURCE_DIR), "-B", str(build_dir), *args], log, "cmake configure")
        stamp.write_text("\n".join(args))
    # cmake --build re-runs the configure step by itself when a CMakeLists.txt changed.
    _run([cmake, "--build", str(build_dir), "-j", str(max(1, jobs))], log, "cmake --build")
    # The CMake package (rnnxConfig.cmake, headers, static libraries, runners) for find_package.
    prefix = prefix_dir(build_dir)
    _run([cmake, "--install", str(build_dir), "--prefix", str(prefix)], log, "cmake --install")

    # Without libtorch, the runners that do not need the torch package (its libtorch).
    wanted = [r for r in CPP_RUNTIMES if torch or "torch" not in r.modules]
    runners = {r.name: runner_path(r, build_dir) for r in wanted}
    for path in runners.values():
        if not path.is_file():
            raise RnnxError(f"the C++ build finished but {path} is missing; see {log}")
    return runners


def default_build_dir() -> Path:
    """cpp/build in a writable source checkout; else the per-user cache, keyed by version."""
    if IN_CHECKOUT and os.access(SOURCE_DIR, os.W_OK):
        return SOURCE_DIR / "build"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).resolve() / "rnnx" / f"cpp-{__version__}"


def prefix_dir(build_dir: Path | None = None) -> Path:
    """The install prefix of a build: CMAKE_PREFIX_PATH for `find_package(rnnx)`."""
    return Path(build_dir or default_build_dir()).resolve() / "prefix"


def config_file(build_dir: Path | None = None) -> Path:
    """rnnxConfig.cmake of a build's prefix (there once `rnnx cpp build` has run)."""
    return prefix_dir(build_dir) / "lib" / "cmake" / "rnnx" / "rnnxConfig.cmake"


def runner_path(runtime: Runtime, build_dir: Path | None = None) -> Path:
    """Where `rnnx cpp build` puts the runner of a C++ runtime of the registry."""
    return (build_dir or default_build_dir()) / str(runtime.runner)


def state(build_dir: Path | None = None) -> dict[str, object]:
    """What is built where, without building: for `rnnx env` and bug reports."""
    build_dir = Path(build_dir or default_build_dir())
    runners = {r.name: runner_path(r, build_dir) for r in CPP_RUNTIMES}
    built = {name: str(path) for name, path in runners.items() if path.is_file()}
    return {
        "sources": str(SOURCE_DIR) if (SOURCE_DIR / "CMakeLists.txt").is_file() else None,
        "build_dir": str(build_dir),
        "built": bool(built),
        "runners": built,
        "prefix": str(prefix_dir(build_dir)) if config_file(build_dir).is_file() else None,
    }


def _require(tool: str, message: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise RnnxError(message)
    return path


def _require_compiler() -> None:
    compiler = os.environ.get("CXX")
    candidates = [compiler] if compiler else ["c++", "g++", "clang++"]
    if not any(shutil.which(c) for c in candidates if c):
        raise RnnxError(
            f"no C++ compiler found ({'CXX=' + compiler if compiler else 'c++, g++, clang++'}); "
            "install g++ or clang (C++17)"
        )


def _onnxruntime_sdk(build_dir: Path, log: Path) -> Path:
    """ONNXRUNTIME_ROOT when set (an official archive), else the SDK assembled under build_dir."""
    given = os.environ.get("ONNXRUNTIME_ROOT")
    if given:
        return Path(given).resolve()
    sdk = build_dir / "onnxruntime-sdk"
    if (sdk / ".rnnx-sdk-complete").exists():
        return sdk  # assembled before: skip even the script
    if shutil.which("npm") is None:
        raise RnnxError(
            "npm is not installed: it is needed once to download the ONNX Runtime headers "
            "(or set ONNXRUNTIME_ROOT to an official onnxruntime release archive)"
        )
    script = SOURCE_DIR / "scripts" / "assemble_onnxruntime_sdk.sh"
    env = {**os.environ, "PYTHON": sys.executable}
    _run(["bash", str(script), str(sdk)], log, "assembling the ONNX Runtime SDK", env=env)
    return sdk


def _torch_cmake_prefix() -> str:
    # Found without importing torch (which takes seconds): the wheel ships share/cmake/Torch.
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        raise RnnxError(
            "torch is not installed: build(torch=False) builds the ONNX Runtime runner only"
        )
    prefix = Path(spec.origin).parent / "share" / "cmake"
    if not (prefix / "Torch" / "TorchConfig.cmake").is_file():
        raise RnnxError(f"this torch installation has no TorchConfig.cmake under {prefix}")
    return str(prefix)


def _run(command: list[str], log: Path, what: str, env: dict[str, str] | None = None) -> None:
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        raise RnnxError(f"{what} failed (exit {result.returncode}): {_last_error(log)}; see {log}")


def _last_error(log: Path) -> str:
    """The most telling line of the log's tail: a compiler or CMake error, else the last line."""
    lines = [line.rstrip() for line in log.read_text(errors="replace").splitlines()[-300:]]
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index].strip()
        if line.startswith("CMake Error"):
            # CMake wraps its message on the indented lines that follow.
            message = [line]
            for more in lines[index + 1 :]:
                if not more.startswith(" ") or not more.strip():
                    break
                message.append(more.strip())
            return " ".join(message)[:400]
        if "error:" in line.lower() and not line.startswith("$ "):
            return line[:400]
    remaining = [line.strip() for line in lines if line.strip() and not line.startswith("$ ")]
    return remaining[-1][:400] if remaining else "no output"
