"""Artifact contract v1: the Python and C++ metadata readers agree, on shared fixture files.

tests/data/metadata/valid/*.json: both readers accept each file and read the same signature
(compared as canonical JSON: the C++ side prints it with `rnnx-metadata-check`; the Python side
is rnnx.core.metadata.parse_metadata).
tests/data/metadata/invalid/*.json: each breaks one rule of the contract; both readers reject it
with one line naming the file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rnnx.core.errors import RnnxError
from rnnx.core.metadata import parse_metadata

if shutil.which("cmake") is None or not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
    pytest.skip("the C++ reader needs cmake and a C++17 compiler", allow_module_level=True)

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "metadata"
VALID = sorted((FIXTURES / "valid").glob("*.json"))
INVALID = sorted((FIXTURES / "invalid").glob("*.json"))
# What the contract says the message must tell the user, for the rules that have wording.
MESSAGES = {
    "foreign_model": ("export it with rnnx",),
    "missing_signature": ("export it with rnnx",),
    "missing_schema": ("re-export",),
    "newer_schema": ("newer rnnx", "schema 2"),
    "schema_not_integer": ("schema",),
}


def _ids(paths: list[Path]) -> list[str]:
    return [path.stem for path in paths]


def _props(path: Path) -> dict[str, str]:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def metadata_check() -> Path:
    from rnnx.cpp_build import build

    tool = next(iter(build().values())).parent / "rnnx-metadata-check"
    assert tool.is_file(), tool
    return tool


def _check(tool: Path, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(tool), str(path)], capture_output=True, text=True, timeout=60)


def _expected(props: dict[str, str]) -> dict[str, Any]:
    """What the fixture says, with the contract's defaults filled in; read by neither reader."""
    signature = json.loads(props["rnnx.signature"])

    def tensors(items: list[dict]) -> list[dict]:
        return [
            {"name": t["name"], "dims": t["dims"], "dtype": t.get("dtype", "float32")}
            for t in items
        ]

    return {
        "schema": int(props["rnnx.schema"]),
        "version": props.get("rnnx.version", ""),
        "signature": {
            "inputs": tensors(signature["inputs"]),
            "outputs": tensors(signature["outputs"]),
            "state_pairs": signature.get("state_pairs", []),
            "streamable": signature.get("streamable", False),
        },
    }


def _canonical(metadata: Any) -> dict[str, Any]:
    """The Python reader's result in the C++ tool's canonical form."""
    signature = metadata.signature

    def tensors(specs: Any) -> list[dict]:
        return [{"name": s.name, "dims": list(s.dims), "dtype": s.dtype} for s in specs]

    return {
        "schema": metadata.schema,
        "version": metadata.version,
        "signature": {
            "inputs": tensors(signature.inputs),
            "outputs": tensors(signature.outputs),
            "state_pairs": [list(pair) for pair in signature.state_pairs],
            "streamable": signature.streamable,
        },
    }


def test_fixtures_are_there() -> None:
    assert len(VALID) >= 6 and len(INVALID) >= 20


@pytest.mark.parametrize("path", VALID, ids=_ids(VALID))
def test_cpp_reads_valid_fixture(metadata_check, path) -> None:
    result = _check(metadata_check, path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert json.loads(lines[0]) == _expected(_props(path))


@pytest.mark.parametrize("path", VALID, ids=_ids(VALID))
def test_python_and_cpp_read_the_same(metadata_check, path) -> None:
    python = _canonical(parse_metadata(_props(path), source=str(path)))
    cpp = json.loads(_check(metadata_check, path).stdout)
    assert python == cpp
    assert isinstance(python["schema"], int) and isinstance(python["version"], str)
    for spec in python["signature"]["inputs"] + python["signature"]["outputs"]:
        # a dim is an int (bool excluded) or a non-empty str
        assert all(type(d) is int or (isinstance(d, str) and d) for d in spec["dims"]), spec


def _assert_fragments(path: Path, message: str) -> None:
    assert str(path) in message, message
    for fragment in MESSAGES.get(path.stem, ()):
        assert fragment in message, message


@pytest.mark.parametrize("path", INVALID, ids=_ids(INVALID))
def test_cpp_rejects_invalid_fixture(metadata_check, path) -> None:
    result = _check(metadata_check, path)
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    _assert_fragments(path, lines[0])


@pytest.mark.parametrize("path", INVALID, ids=_ids(INVALID))
def test_python_rejects_invalid_fixture(path) -> None:
    with pytest.raises(RnnxError) as caught:
        parse_metadata(_props(path), source=str(path))
    message = str(caught.value)
    assert "\n" not in message, message
    _assert_fragments(path, message)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("[1, 2]", "not a JSON object"), ('{"rnnx.schema": 1}', "'rnnx.schema' is not a string")],
)
def test_check_tool_wants_an_object_of_strings(metadata_check, tmp_path, content, fragment):
    path = tmp_path / "meta.json"
    path.write_text(content)
    result = _check(metadata_check, path)
    assert result.returncode == 1 and result.stderr.startswith("error: "), result
    assert fragment in result.stderr and str(path) in result.stderr
