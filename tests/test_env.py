"""`rnnx env`, where C++ sources and builds live, and option errors that name the option."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnx import cpp_build
from rnnx.cli import main
from rnnx.core.version import __version__
from rnnx.env import CPU_FLAGS, cpu_info

REPO = Path(__file__).resolve().parents[1]


def test_env_json_names_versions_providers_cpp_and_cpu() -> None:
    result = CliRunner().invoke(main, ["env", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["rnnx"] == __version__
    for name in ("torch", "onnx", "onnxscript", "onnxruntime"):
        assert info["packages"][name], name
    assert "CPUExecutionProvider" in info["onnxruntime_providers"]
    if info["packages"]["openvino"]:
        assert "CPU" in info["openvino_devices"]
    else:
        assert info["openvino_devices"] is None
    assert info["cpp"]["sources"] == str(cpp_build.SOURCE_DIR)
    assert info["cpp"]["build_dir"] == str(cpp_build.default_build_dir())
    assert info["cpu"]["cores"] >= 1


def test_env_text_is_one_screen_without_importing_torch() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from rnnx.cli import main; "
        "r = CliRunner().invoke(main, ['env']); print(r.output); "
        "print('torch imported' if 'torch' in sys.modules else 'no torch')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().endswith("no torch")
    assert re.search(r"^onnxruntime\s+\d", out, re.M) and re.search(r"^c\+\+ build\s", out, re.M)
    assert len(out.splitlines()) < 40


def test_cpu_info_reads_flags(tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: Test CPU\nflags\t\t: fpu avx2 fma avx512f amx_tile\n")
    info = cpu_info(cpuinfo)
    assert info["model"] == "Test CPU"
    assert info["flags"] == {f: f in ("avx2", "fma", "avx512f", "amx_tile") for f in CPU_FLAGS}
    if platform.machine() == "x86_64":  # the class verifications record (core/machine.py)
        assert info["class"] == "avx512"
    assert cpu_info(tmp_path / "missing")["flags"] == {}


def test_checkout_builds_in_cpp_build_else_in_the_user_cache(monkeypatch, tmp_path) -> None:
    assert cpp_build.IN_CHECKOUT and cpp_build.SOURCE_DIR == REPO / "cpp"
    assert cpp_build.default_build_dir() == REPO / "cpp" / "build"
    monkeypatch.setattr(cpp_build, "IN_CHECKOUT", False)  # an installed wheel
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cpp_build.default_build_dir() == tmp_path / "rnnx" / f"cpp-{__version__}"
    assert cpp_build.prefix_dir() == tmp_path / "rnnx" / f"cpp-{__version__}" / "prefix"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cpp_build.default_build_dir() == tmp_path / "home" / ".cache" / "rnnx" / (
        f"cpp-{__version__}"
    )


def test_cpp_prefix_says_to_build_first(tmp_path) -> None:
    result = CliRunner().invoke(main, ["cpp", "prefix", "--build-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "rnnx cpp build" in result.output and str(tmp_path / "prefix") in result.output


def test_cmake_project_version_is_rnnx_version() -> None:
    text = (REPO / "cpp" / "CMakeLists.txt").read_text()
    assert re.search(r"project\(rnnx_cpp VERSION (\S+)", text).group(1) == __version__


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--batch", "0", "--batch: expected positive integers, got '0'"),
        ("--time", "x", "--time: expected comma-separated integers, got 'x'"),
        ("--threads", "1,-2", "--threads: expected positive integers, got '1,-2'"),
    ],
)
def test_bench_list_options_name_themselves(tmp_path, option, value, message) -> None:
    result = CliRunner().invoke(main, ["bench", str(tmp_path), option, value])
    assert result.exit_code == 1
    assert message in result.output
