"""Property test: mutated manifests, input files and option values never reach an internal
error (exit code 2, a traceback) and never leave a partial output file.

A fixed, derandomized budget keeps CI deterministic and under about a minute.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from rnnx.cli import main

BUDGET = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Small values only: a mutated size must not ask the verifier for gigabytes.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["time", "batch", "../x", "/etc/passwd", "model.onnx", "onnx", "GRU"]),
)
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


# Text from characters that make sizes, numbers and names; short, so "99x999" is the largest
# size it can ask for.
small_text = st.text(alphabet="0123456789x,.-+e abcinfNa:/", max_size=6) | st.text(max_size=6)
OPTIONS = {
    "run": ["--chunk", "--threads", "--provider", "--runtime"],
    "verify": ["--verify-sizes", "--atol", "--rtol", "--runtime", "--precision"],
}


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    torch.manual_seed(0)
    torch.save(nn.GRU(3, 4).state_dict(), root / "gru.pt")
    result = CliRunner().invoke(
        main, ["export", str(root / "gru.pt"), "--format", "onnx", "-o", str(root / "out")]
    )
    assert result.exit_code == 0, result.output
    return root / "out"


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key/index path into a JSON document (the document itself excluded)."""
    found: list[tuple] = []
    if not isinstance(value, (dict, list)):
        return found
    for key, child in value.items() if isinstance(value, dict) else enumerate(value):
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


def _mutate(document: Any, path: tuple, value: Any, delete: bool) -> Any:
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return document


def _invoke(args: list[Any]) -> Any:
    result = CliRunner().invoke(main, [str(a) for a in args])
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code in (0, 1), output
    assert "Traceback" not in output and "internal error" not in output, output
    return result


def _no_partial_outputs(directory: Path, result: Any, output: Path) -> None:
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".")], result.output
    if result.exit_code != 0:
        assert not output.exists(), result.output


@BUDGET
@given(data=st.data())
def test_mutated_exports_inputs_and_options(export, data) -> None:
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        directory = work / "out"
        shutil.copytree(export, directory)
        manifest = json.loads((directory / "rnnx.json").read_text())
        kind = data.draw(st.sampled_from(["manifest", "input", "options"]), label="kind")
        x = work / "x.npy"
        np.save(x, np.random.default_rng(0).random((5, 2, 3), dtype=np.float32))
        args: list[Any] = []
        if kind == "manifest":
            path = data.draw(st.sampled_from(_paths(manifest)), label="path")
            delete = data.draw(st.booleans(), label="delete") and not isinstance(path[-1], int)
            manifest = _mutate(manifest, path, data.draw(junk, label="value"), delete)
            (directory / "rnnx.json").write_text(json.dumps(manifest))
        elif kind == "input":
            x = work / data.draw(st.sampled_from(["x.npy", "x.npz"]), label="file")
            contents = data.draw(
                st.one_of(
                    st.binary(max_size=64),
                    st.dictionaries(
                        st.sampled_from(["input", "h0", "other"]),
                        st.tuples(
                            st.lists(st.integers(0, 4), max_size=4),
                            st.sampled_from(["float32", "float64", "int64", "bool", "float16"]),
                        ),
                        max_size=3,
                    ),
                ),
                label="contents",
            )
            if isinstance(contents, bytes):
                x.write_bytes(contents)
            else:
                arrays = {k: np.ones(shape, dtype) for k, (shape, dtype) in contents.items()}
                with open(x, "wb") as file:  # the name is kept: .npy holding an archive too
                    if x.suffix == ".npz" or len(arrays) != 1:
                        np.savez(file, **arrays)
                    else:
                        np.save(file, next(iter(arrays.values())))
        else:
            command = data.draw(st.sampled_from(["run", "verify"]), label="command")
            option = data.draw(st.sampled_from(OPTIONS[command]), label="option")
            value = data.draw(st.one_of(st.integers(-2, 7), small_text), label="value")
            args = [option, value]
            if command == "verify":
                _invoke(["verify", directory, *args])
                return
        output = work / "y.npz"
        result = _invoke(["run", directory, "--input", x, "-o", output, *args])
        _no_partial_outputs(work, result, output)
        if kind == "manifest":
            report = work / "report.json"  # written even when verification fails (exit 1)
            _invoke(["verify", directory, "--verify-sizes", "1x2", "--json", report])
            _no_partial_outputs(work, result, output)
            _invoke(["inspect", directory])
