"""Trust comes from the command line or the API call, never from the export directory."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import rnnx
from rnnx.core.errors import RnnxError
from rnnx.exporter.checkpoint import LoadOptions
from tests.test_cli import assert_clean_error, run


@pytest.fixture
def pickled_export(tmp_path) -> Path:
    checkpoint = tmp_path / "full.pt"
    torch.save(nn.GRU(3, 4).eval(), checkpoint)
    out = tmp_path / "out"
    assert run("export", checkpoint, "--trust-checkpoint", "-o", out).exit_code == 0
    return out


def test_manifest_cannot_grant_unpickling(pickled_export, tmp_path) -> None:
    out = pickled_export
    assert json.loads((out / "rnnx.json").read_text())["source"]["trust_checkpoint"]
    assert_clean_error(run("verify", out), "--trust-checkpoint")
    assert run("verify", out, "--trust-checkpoint").exit_code == 0
    with pytest.raises(RnnxError, match="--trust-checkpoint"):
        rnnx.load(out, "eager")
    session = rnnx.load(out, "eager", trust=LoadOptions(trust_checkpoint=True))
    assert session.run({"input": np.zeros((2, 1, 3), np.float32)})["output"].shape == (2, 1, 4)
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 3), np.float32))
    args = ("run", out, "--input", tmp_path / "x.npy", "--runtime", "eager")
    assert_clean_error(run(*args, "-o", tmp_path / "y.npz"), "--trust-checkpoint")
    assert not (tmp_path / "y.npz").exists()
    assert run(*args, "-o", tmp_path / "y.npz", "--trust-checkpoint").exit_code == 0
    bench = ("bench", out, "--runtime", "eager", "--repeats", "1", "--time", "2")
    refused = run(*bench)  # after the progress bar's label
    assert refused.exit_code == 1 and "--trust-checkpoint" in refused.stderr.splitlines()[-1]
    assert run(*bench, "--trust-checkpoint").exit_code == 0


def test_verify_checkpoint_inherits_no_trust(pickled_export, tmp_path) -> None:
    moved = tmp_path / "moved.pt"
    torch.save(nn.GRU(3, 4).eval(), moved)
    assert_clean_error(run("verify", pickled_export, "--checkpoint", moved), "--trust-checkpoint")
    # a different file is hashed now, not against the export's sha256: it loads (and fails
    # parity, since its weights differ) only with the caller's trust
    result = run("verify", pickled_export, "--checkpoint", moved, "--trust-checkpoint")
    assert_clean_error(result, "verification failed")


@pytest.fixture
def hostile_package(tmp_path, monkeypatch) -> Path:
    """A module that leaves a marker file when it is imported or called."""
    marker = tmp_path / "ran"
    (tmp_path / "hostile_mod.py").write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from torch import nn
            Path({str(marker)!r}).write_text("imported")
            class Encoder(nn.LSTM):
                def __init__(self, hidden=5):
                    super().__init__(3, hidden)
            def boom(**kwargs):
                Path({str(marker)!r}).write_text("called")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return marker


def test_manifest_cannot_import_model(hostile_package, tmp_path) -> None:
    checkpoint = tmp_path / "enc.pt"
    torch.save(nn.LSTM(3, 5).state_dict(), checkpoint)
    out = tmp_path / "out"
    assert run("export", checkpoint, "--model", "hostile_mod:Encoder", "-o", out).exit_code == 0
    sys.modules.pop("hostile_mod", None)
    hostile_package.unlink()
    assert_clean_error(run("verify", out), "--model hostile_mod:Encoder")
    assert not hostile_package.exists()
    with pytest.raises(RnnxError, match="--model"):
        rnnx.verify(out)
    assert not hostile_package.exists()
    assert run("verify", out, "--model", "hostile_mod:Encoder").exit_code == 0


def test_plain_state_dict_needs_no_trust(tmp_path) -> None:
    checkpoint = tmp_path / "lstm.safetensors"
    from safetensors.torch import save_file

    save_file(nn.LSTM(3, 5).state_dict(), checkpoint)
    out = tmp_path / "out"
    assert run("export", checkpoint, "-o", out).exit_code == 0
    assert run("verify", out).exit_code == 0


@pytest.mark.parametrize("target", ["os:system", "hostile_mod:boom", "builtins:eval"])
def test_model_must_be_a_module_class_before_it_is_called(hostile_package, tmp_path, target):
    checkpoint = tmp_path / "enc.pt"
    torch.save(nn.LSTM(3, 5).state_dict(), checkpoint)
    touched = tmp_path / "touched"
    init_args = json.dumps({"command": f"touch {touched}", "source": "1"})
    result = run("export", checkpoint, "--model", target, "--init-args", init_args,
                 "-o", tmp_path / "out")  # fmt: skip
    assert_clean_error(result, "not an nn.Module subclass", out_dir=tmp_path / "out")
    assert not touched.exists()
    assert not (hostile_package.exists() and hostile_package.read_text() == "called")


def test_artifact_symlink_out_of_the_export_is_refused(tmp_path) -> None:
    out = tmp_path / "out"
    torch.save(nn.GRU(3, 4).state_dict(), tmp_path / "gru.pt")
    assert run("export", tmp_path / "gru.pt", "--format", "onnx", "-o", out).exit_code == 0
    outside = tmp_path / "elsewhere.onnx"
    (out / "model.onnx").rename(outside)
    (out / "model.onnx").symlink_to(outside)
    assert_clean_error(run("verify", out), "outside the export directory")
    with pytest.raises(RnnxError, match="outside"):
        rnnx.load(out)
