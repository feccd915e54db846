"""Quiet by default: torch's notices about its own kernels do not reach the user; rnnx's
warnings do. In fresh processes, because torch gives such a notice once per process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from click.testing import CliRunner

import rnnx
from rnnx.cli import main

EXPORT = """
import torch, rnnx
layer = torch.nn.LSTM(4, 6, proj_size=3)  # left in training mode: an RnnxWarning
rnnx.export(layer, {out!r}, rnnx.ExportOptions(verify=False))
"""

RUN = """
import numpy as np, rnnx
for runtime in ("eager", "torchscript"):
    rnnx.load({out!r}, runtime).run({{"input": np.zeros((3, 1, 4), np.float32)}})
"""


def _stderr(code: str) -> str:
    # -W default: shows every warning Python would otherwise show once, DeprecationWarning of
    # torch's own modules aside (torch.jit's deprecation is about the library, filtered in
    # pyproject for the tests; a user does not see it either)
    done = subprocess.run(
        [sys.executable, "-W", "default", "-W", "ignore::DeprecationWarning", "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_projected_lstm_export_and_runs_print_only_rnnx_warnings(tmp_path) -> None:
    out = str(tmp_path / "exported")
    exported = _stderr(EXPORT.format(out=out))
    assert "RnnxWarning: train-mode" in exported
    assert "oneDNN" not in exported and "UserWarning" not in exported, exported
    ran = _stderr(RUN.format(out=out))
    assert ran == "", ran


def test_a_fallback_is_an_rnnx_warning_the_command_line_prints(tmp_path) -> None:
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA: nothing to fall back from")
    rnnx.export(torch.nn.GRU(3, 4).eval(), tmp_path / "gru", rnnx.ExportOptions(verify=False))
    np.save(tmp_path / "x.npy", np.zeros((5, 1, 3), np.float32))
    args = ["run", str(tmp_path / "gru"), "--input", str(tmp_path / "x.npy"),
            "-o", str(tmp_path / "out.npz"), "--provider", "cuda:0",
            "--allow-fallback"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "rnnx: warning: provider 'cuda:0'" in result.output
    assert "running on CPUExecutionProvider" in result.output
