"""No input reaches an internal error, and no output is left half-written (issue #13)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import rnnx
from rnnx.core.errors import RnnxError
from tests.test_cli import assert_clean_error, run


@pytest.fixture(scope="module")
def gru_export(tmp_path_factory) -> Path:
    """A GRU export (onnx only) and a checkpoint next to it, made once for the module."""
    root = tmp_path_factory.mktemp("gru")
    torch.manual_seed(0)
    torch.save(nn.GRU(3, 4).state_dict(), root / "gru.pt")
    result = run("export", root / "gru.pt", "--format", "onnx", "-o", root / "out")
    assert result.exit_code == 0, result.output
    np.save(root / "x.npy", np.random.rand(5, 2, 3).astype(np.float32))
    return root / "out"


@pytest.fixture
def export_copy(gru_export, tmp_path) -> Path:
    shutil.copytree(gru_export, tmp_path / "out")
    return tmp_path / "out"


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize(
    "state_dict, needle",
    [
        ({"weight_ih_l0": torch.zeros(12), "weight_hh_l0": torch.zeros(12, 4)}, "2-D"),
        ({"weight_ih_l0": torch.zeros(0, 3), "weight_hh_l0": torch.zeros(0, 0)}, "non-empty"),
        ({"weight_ih_l0": torch.zeros(12, 3), "weight_hh_l0": torch.zeros(12, 0)}, "non-empty"),
    ],
    ids=["1-D weight", "zero hidden", "zero columns"],
)
def test_malformed_state_dicts(tmp_path, state_dict, needle) -> None:
    torch.save(state_dict, tmp_path / "bad.pt")
    out = tmp_path / "out"
    assert_clean_error(run("export", tmp_path / "bad.pt", "-o", out), "bad.pt", needle, out_dir=out)


@pytest.mark.parametrize(
    "output, needle",
    [
        ("/proc/rnnx-out", "cannot create output"),
        ("{root}/gru.pt/sub", "cannot create output"),
        (".", "current directory"),
        ("..", "current directory"),
    ],
)
def test_odd_export_targets(gru_export, tmp_path, monkeypatch, output, needle) -> None:
    root = gru_export.parent
    monkeypatch.chdir(tmp_path)
    result = run("export", root / "gru.pt", "-o", output.format(root=root))
    assert_clean_error(result, needle)
    assert _leftovers(tmp_path) == [] and _leftovers(root) == []


def test_force_checkpoint_inside_the_target_is_refused(export_copy) -> None:
    checkpoint = export_copy / "gru.pt"
    torch.save(nn.GRU(3, 4).state_dict(), checkpoint)
    result = run("export", checkpoint, "-o", export_copy, "--force")
    assert_clean_error(result, "inside the output", "--force")
    assert checkpoint.exists() and (export_copy / "rnnx.json").exists()


def test_force_through_a_symlink_replaces_its_target(gru_export, tmp_path) -> None:
    real, link = tmp_path / "real", tmp_path / "link"
    shutil.copytree(gru_export, real)
    link.symlink_to(real)
    args = ("export", gru_export.parent / "gru.pt", "--format", "torchscript", "-o", link)
    assert_clean_error(run(*args), "--force")
    result = run(*args, "--force")
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and sorted(p.name for p in real.iterdir()) == [
        "model.torchscript.pt",
        "rnnx.json",
    ]
    assert _leftovers(tmp_path) == []


def test_verify_json_cannot_overwrite_the_export(export_copy, tmp_path) -> None:
    before = {p.name: p.read_bytes() for p in export_copy.iterdir()}
    for name in ("rnnx.json", "model.onnx"):
        assert_clean_error(run("verify", export_copy, "--json", export_copy / name), "--json")
    assert {p.name: p.read_bytes() for p in export_copy.iterdir()} == before
    result = run("verify", export_copy, "--json", tmp_path / "missing" / "report.json")
    assert result.exit_code == 1 and "missing" in result.stderr.splitlines()[-1]
    assert run("verify", export_copy, "--json", export_copy / "report.json").exit_code == 0


def test_run_odd_outputs_and_inputs(gru_export, tmp_path) -> None:
    x = gru_export.parent / "x.npy"
    assert_clean_error(run("run", gru_export, "--input", x, "-o", tmp_path), "is a directory")
    assert_clean_error(
        run("run", gru_export, "--input", x, "-o", tmp_path / "no" / "y.npz"), "does not exist"
    )
    np.savez(tmp_path / "full.npz", input=np.load(x))
    data = (tmp_path / "full.npz").read_bytes()
    files = {"trunc.npz": data[:200], "short.npz": data[:10], "x.npz": x.read_bytes(),
             "npz.npy": data}  # fmt: skip
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        result = run("run", gru_export, "--input", tmp_path / name, "-o", tmp_path / "y.npz")
        assert_clean_error(result, name)
    np.save(tmp_path / "empty.npy", np.zeros((0, 2, 3), np.float32))
    for chunk in (["--chunk", "2"], []):
        args = ("--input", tmp_path / "empty.npy", "-o", tmp_path / "y.npz", *chunk)
        assert_clean_error(run("run", gru_export, *args), "empty time axis")
    assert not (tmp_path / "y.npz").exists() and _leftovers(tmp_path) == []


def test_stream_restore_odd_files(gru_export, tmp_path) -> None:
    stream = rnnx.load(gru_export).stream(2)
    stream.save(tmp_path / "state.npz")
    data = (tmp_path / "state.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    np.save(tmp_path / "state.npy", np.zeros((1, 2, 4), np.float32))
    for name in ("trunc.npz", "state.npy", "missing.npz"):
        with pytest.raises(RnnxError, match=name):
            stream.restore(tmp_path / name)
    stream.restore(tmp_path / "state.npz")
    with pytest.raises(RnnxError, match="cannot write"):
        stream.save(tmp_path / "no" / "state.npz")


def test_artifact_not_matching_its_manifest(export_copy, tmp_path) -> None:
    torch.save(nn.GRU(3, 5).state_dict(), tmp_path / "gru5.pt")
    other = tmp_path / "other"
    assert run("export", tmp_path / "gru5.pt", "--format", "onnx", "-o", other).exit_code == 0
    shutil.copy(other / "model.onnx", export_copy / "model.onnx")
    np.save(tmp_path / "x.npy", np.zeros((5, 2, 3), np.float32))
    result = run("run", export_copy, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz")
    assert_clean_error(result, "model.onnx", "does it match its manifest")
    assert_clean_error(run("verify", export_copy), "model.onnx")
    with pytest.raises(RnnxError, match="model.onnx"):
        rnnx.load(export_copy).stream(2).step(np.zeros((1, 2, 3), np.float32))
    torch.save(nn.LSTM(3, 4).state_dict(), tmp_path / "lstm.pt")
    lstm = run("export", tmp_path / "lstm.pt", "--format", "onnx", "-o", tmp_path / "l")
    assert lstm.exit_code == 0, lstm.output
    shutil.copy(tmp_path / "l" / "model.onnx", export_copy / "model.onnx")
    with pytest.raises(RnnxError, match="does not match its manifest"):
        rnnx.load(export_copy)
    assert os.path.exists(export_copy / "rnnx.json")


_SLOW_EXPORT = """
import sys, time
from pathlib import Path
import torch
from torch import nn
import rnnx

class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 4)

    def forward(self, x):
        parent = Path(sys.argv[1]).parent
        if parent.is_dir() and any(p.name.startswith(".slow.") for p in parent.iterdir()):
            print("staging", flush=True)  # inside the staging directory's context: wait there
            time.sleep(30)
        return self.rnn(x)[0]

rnnx.export(Slow(), sys.argv[1], example_inputs=(torch.zeros(5, 2, 3),))
"""


def test_sigterm_during_export_leaves_no_staging_directory(tmp_path) -> None:
    import signal
    import subprocess
    import sys

    script = tmp_path / "slow.py"
    script.write_text(_SLOW_EXPORT)
    out = tmp_path / "exports" / "slow"
    process = subprocess.Popen(
        [sys.executable, script, out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "staging", process.stderr.read()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGTERM  # still ends as the sender asked
    assert not out.exists() and _leftovers(out.parent) == []
