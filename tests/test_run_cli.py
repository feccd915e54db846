"""`rnnx run`: files in, files out, whole or streamed in chunks."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from torch import nn

from rnnx.cli import main
from rnnx.pipeline import ExportOptions, export


def run(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)])


@pytest.fixture(scope="module")
def lstm_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("run") / "lstm"
    export(
        nn.LSTM(4, 6, num_layers=2, batch_first=True).eval(), directory, ExportOptions(verify=False)
    )
    return directory


def test_npy_whole_and_chunked_agree(lstm_dir, tmp_path) -> None:
    x = np.random.default_rng(0).standard_normal((2, 25, 4), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    whole = run(lstm_dir, "--input", tmp_path / "x.npy", "-o", tmp_path / "whole.npz")
    assert whole.exit_code == 0, whole.output
    for runtime in ("onnxruntime", "torchscript"):
        out = tmp_path / f"{runtime}.npz"
        args = ("--input", tmp_path / "x.npy", "--chunk", "4", "--runtime", runtime, "-o", out)
        chunked = run(lstm_dir, *args)
        assert chunked.exit_code == 0, chunked.output
        with np.load(tmp_path / "whole.npz") as a, np.load(out) as b:
            assert sorted(a.files) == sorted(b.files) == ["c_n", "h_n", "output"]
            for name in a.files:
                np.testing.assert_allclose(b[name], a[name], atol=1e-5, rtol=1e-4)


def test_npz_with_states(lstm_dir, tmp_path) -> None:
    rng = np.random.default_rng(1)
    feeds = {
        "input": rng.standard_normal((3, 5, 4), dtype=np.float32),
        "h0": rng.standard_normal((2, 3, 6), dtype=np.float32),
        "c0": rng.standard_normal((2, 3, 6), dtype=np.float32),
    }
    np.savez(tmp_path / "in.npz", **feeds)
    result = run(lstm_dir, "--input", tmp_path / "in.npz", "-o", tmp_path / "out.npz")
    assert result.exit_code == 0, result.output
    with_states = np.load(tmp_path / "out.npz")["h_n"]
    np.savez(tmp_path / "in0.npz", input=feeds["input"])
    assert run(lstm_dir, "--input", tmp_path / "in0.npz", "-o", tmp_path / "o0.npz").exit_code == 0
    assert not np.allclose(np.load(tmp_path / "o0.npz")["h_n"], with_states)


@pytest.mark.parametrize(
    "make_input, extra, message",
    [
        (lambda p: None, (), "not found"),
        (lambda p: p.write_text("junk"), (), "not a readable .npy/.npz"),
        (lambda p: np.save(p, np.zeros((2, 5, 3), np.float32)), (), "size 3 on axis 2, expected 4"),
        (lambda p: np.save(p, np.zeros((2, 5, 4), np.float64)), (), "dtype float64"),
        (
            lambda p: np.save(p, np.zeros((2, 5, 4), np.float32)),
            ("--provider", "nonesuch"),
            "available",
        ),
        (lambda p: np.save(p, np.zeros((2, 5, 4), np.float32)), ("--chunk", "0"), "--chunk"),
    ],
    ids=["missing", "junk", "feature", "dtype", "provider", "chunk"],
)
def test_bad_runs_are_one_line_errors(lstm_dir, tmp_path, make_input, extra, message) -> None:
    path = tmp_path / "x.npy"
    make_input(path)
    result = run(lstm_dir, "--input", path, "-o", tmp_path / "out.npz", *extra)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "out.npz").exists()
