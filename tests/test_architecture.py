"""The architecture holds: layers without cycles, and a format or runtime is one module + one
registry entry (rnnx/formats.py)."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from torch import nn

import rnnx
from rnnx import formats
from rnnx.benchmark import BenchOptions, bench, targets
from rnnx.exporter.plan import WriteJob
from rnnx.pipeline import ExportOptions, export

ROOT = Path(__file__).resolve().parent.parent


def test_import_layers_and_no_cycles() -> None:
    """import-linter's contracts in pyproject.toml (imports inside functions count)."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


def write_copy(job: WriteJob, path: Path) -> dict:
    """A new format's whole writer: here, a byte copy of the ONNX artifact."""
    shutil.copyfile(job.written["onnx"], path)
    return {"copied_from": job.written["onnx"].name}


def open_copy(path: Path, manifest, **options):
    """A new runtime's whole opener: here, onnxruntime without graph optimizations."""
    from rnnx.runtimes.onnxruntime_session import open_onnxruntime

    return open_onnxruntime(path, manifest, graph_optimization="disable", **options)


@pytest.fixture
def registered(monkeypatch):
    """One Format entry and one Runtime entry, nothing else (the functions above are the
    'one module')."""
    monkeypatch.setitem(
        formats.FORMATS,
        "onnx-copy",
        formats.Format("onnx-copy", "model.copy.onnx", f"{__name__}:write_copy", "a copy",
                       default=False, requires=("onnx",)),
    )  # fmt: skip
    monkeypatch.setitem(
        formats.RUNTIMES,
        "onnxruntime-plain",
        formats.Runtime("onnxruntime-plain", ("onnx-copy",), f"{__name__}:open_copy",
                        "export with --format onnx,onnx-copy", modules=("onnxruntime",)),
    )  # fmt: skip


def test_a_new_format_and_runtime_are_one_entry_each(registered, tmp_path) -> None:
    layer = nn.GRU(3, 4).eval()
    result = export(layer, tmp_path / "gru", ExportOptions(formats=("onnx", "onnx-copy")))
    # written, recorded in the manifest, and verified by its runtime like the built-in ones
    assert result.manifest.artifacts["onnx-copy"] == "model.copy.onnx"
    assert result.report is not None and result.report.summary()["onnx-copy"]["passed"]
    assert rnnx.verify(tmp_path / "gru").summary()["onnx-copy"]["passed"]
    # rnnx.load opens it, streams included
    session = rnnx.load(tmp_path / "gru", "onnxruntime-plain")
    x = np.ones((5, 2, 3), np.float32)
    expected = rnnx.load(tmp_path / "gru", "eager").run({"input": x})["output"]
    np.testing.assert_allclose(session.run({"input": x})["output"], expected, atol=1e-5)
    assert session.stream(batch=2).step(x)["output"].shape == (5, 2, 4)
    # rnnx bench offers and measures it
    assert "onnxruntime-plain" in targets()
    rows = bench(tmp_path / "gru", BenchOptions(runtimes=("eager", "onnxruntime-plain"), repeats=2))
    assert {r.runtime for r in rows} == {"eager", "onnxruntime-plain"}


def test_registry_names_are_consistent() -> None:
    """One name per format everywhere: the manifest key, --format, and bench targets."""
    for name, entry in formats.FORMATS.items():
        assert entry.name == name
        assert formats.runtimes_for(name), f"no runtime reads {name}"
        for base in entry.requires:
            assert list(formats.FORMATS).index(base) < list(formats.FORMATS).index(name)
    for name, runtime in formats.RUNTIMES.items():
        assert runtime.name == name
        assert (runtime.opener is None) != (runtime.runner is None) or not runtime.formats
        assert all(f in formats.FORMATS for f in runtime.formats)
    assert {"onnxruntime", "onnxruntime:onnx-int8", "eager"} <= set(targets())


def test_manifest_and_options_are_typed() -> None:
    for options in (ExportOptions(), BenchOptions(), rnnx.VerifyOptions()):
        assert dataclasses.is_dataclass(options) and hash(options) is not None
