"""rnnx as users get it: the wheel, installed into a fresh venv outside the checkout.

One module-scoped venv (no --system-site-packages) gets the wheel with the pinned stack
(constraints.txt; torch comes from the local wheel cache). From a directory outside the checkout
it then runs `rnnx --version`, exports and verifies a small GRU, builds the C++ side
(`rnnx cpp build --no-torch`, into a cache dir, never site-packages), and builds
tests/packaging/consumer, a CMake project that only does find_package(rnnx), whose output must
match Python onnxruntime. The ONNX Runtime SDK that tests/cpp assembled is reused through
ONNXRUNTIME_ROOT when present, so nothing is downloaded twice.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnx.core.version import __version__

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
CONSUMER = Path(__file__).resolve().parent / "consumer"
TOLERANCE = 1e-5

if shutil.which("cmake") is None:
    pytest.skip("cmake is not installed", allow_module_level=True)
if not any(shutil.which(c) for c in (os.environ.get("CXX"), "c++", "g++", "clang++") if c):
    pytest.skip("no C++ compiler (c++, g++, clang++)", allow_module_level=True)


def _run(args: list[str | Path], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def user(tmp_path_factory) -> dict[str, object]:
    """A fresh venv holding the wheel, and the environment a user's shell would have."""
    root = tmp_path_factory.mktemp("packaging")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # The wheel, built the way `pip wheel .` builds it (offline when setuptools is here).
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    dist = root / "dist"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation]
    _run([*pip_wheel, "-w", dist, REPO], REPO, env)
    (wheel,) = dist.glob("rnnx-*.whl")

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", venv], root, env)
    python = venv / "bin" / "python"
    # --no-compile: byte-compiling torch alone takes longer than everything else here.
    install = [python, "-m", "pip", "install", "-q", "--no-compile", "-c", REPO / "constraints.txt"]
    _run([*install, wheel], root, env)

    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(venv)
    env["XDG_CACHE_HOME"] = str(root / "cache")
    sdk = REPO / "cpp" / "build" / "onnxruntime-sdk"
    if "ONNXRUNTIME_ROOT" not in env and (sdk / ".rnnx-sdk-complete").exists():
        env["ONNXRUNTIME_ROOT"] = str(sdk)
    work = root / "work"  # outside the checkout: nothing can come from REPO by accident
    work.mkdir()
    return {"root": root, "wheel": wheel, "venv": venv, "python": python, "env": env, "work": work}


def test_wheel_carries_sources_license_and_types(user) -> None:
    import zipfile

    names = set(zipfile.ZipFile(user["wheel"]).namelist())
    assert "rnnx/_cpp/CMakeLists.txt" in names
    assert "rnnx/_cpp/cmake/rnnxConfig.cmake.in" in names
    assert "rnnx/py.typed" in names
    assert f"rnnx-{__version__}.dist-info/licenses/LICENSE" in names
    assert not [n for n in names if n.startswith("rnnx/_cpp/build")]


def test_installed_cli_exports_and_verifies(user) -> None:
    env, work = user["env"], user["work"]
    assert _run(["rnnx", "--version"], work, env).strip().endswith(__version__)
    where = _run([user["python"], "-c", "import rnnx; print(rnnx.__file__)"], work, env)
    assert Path(where.strip()).is_relative_to(user["venv"])

    script = "import torch; torch.manual_seed(0); "
    script += "torch.save(torch.nn.GRU(4, 8, batch_first=True).state_dict(), 'gru.pt')"
    _run([user["python"], "-c", script], work, env)
    _run(["rnnx", "export", "gru.pt", "-o", "gru", "--batch-first", "--format", "onnx"], work, env)
    _run(["rnnx", "verify", "gru"], work, env)
    assert (work / "gru" / "model.onnx").is_file()


def test_installed_cpp_build_and_find_package_consumer(user) -> None:
    env, work, venv = user["env"], user["work"], user["venv"]
    if not (work / "gru" / "model.onnx").is_file():
        pytest.skip("needs the export of test_installed_cli_exports_and_verifies")

    out = _run(["rnnx", "cpp", "build", "--no-torch"], work, env)
    build_dir = Path(env["XDG_CACHE_HOME"]) / "rnnx" / f"cpp-{__version__}"
    assert str(build_dir / "rnnx-ort-run") in out
    site_cpp = next(venv.glob("lib/python*/site-packages/rnnx/_cpp"))
    assert not (site_cpp / "build").exists()  # never into site-packages

    prefix = Path(_run(["rnnx", "cpp", "prefix"], work, env).strip())
    assert prefix == build_dir / "prefix"
    assert (prefix / "lib" / "cmake" / "rnnx" / "rnnxConfigVersion.cmake").is_file()

    app = work / "consumer-build"
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    configure = ["cmake", "-S", CONSUMER, "-B", app, f"-DCMAKE_PREFIX_PATH={prefix}"]
    _run([*configure, *generator], work, env)
    _run(["cmake", "--build", app], work, env)

    x = np.random.default_rng(0).standard_normal((1, 13, 4)).astype(np.float32)
    np.save(work / "x.npy", x)
    _run([app / "stream_npy", work / "gru" / "model.onnx", "x.npy", "y.npy"], work, env)
    streamed = np.load(work / "y.npy")

    import onnxruntime as ort

    session = ort.InferenceSession(str(work / "gru" / "model.onnx"))
    feeds = {"input": x, "h0": np.zeros((1, 1, 8), np.float32)}
    expected = session.run(None, feeds)[0]
    assert streamed.shape == expected.shape == (1, 13, 8)
    np.testing.assert_allclose(streamed, expected, atol=TOLERANCE, rtol=0)
