"""`rnnx export` and `rnnx verify` through click's runner, for every checkpoint kind and error."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file
from torch import nn

from rnnx.cli import main


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_clean_error(result, *needles: str, out_dir: Path | None = None) -> None:
    """One line on stderr naming the problem, exit 1, no export or staging directory left."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnx: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    if out_dir is not None:
        assert not out_dir.exists()
        assert not [p for p in out_dir.parent.iterdir() if p.name.startswith(f".{out_dir.name}.")]


def manifest(out: Path) -> dict:
    return json.loads((out / "rnnx.json").read_text())


@pytest.fixture
def lstm_checkpoint(tmp_path) -> tuple[nn.LSTM, Path]:
    layer = nn.LSTM(4, 6, num_layers=2, bidirectional=True).eval()
    path = tmp_path / "lstm.pt"
    torch.save(layer.state_dict(), path)
    return layer, path


def test_export_state_dict_writes_verified_directory(lstm_checkpoint, tmp_path) -> None:
    _, checkpoint = lstm_checkpoint
    out = tmp_path / "out"
    result = run("export", checkpoint, "-o", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "model.onnx",
        "model.torchscript.pt",
        "rnnx.json",
    ]
    assert "PASS onnx" in result.output and "PASS torchscript" in result.output
    data = manifest(out)
    assert data["spec"]["kind"] == "LSTM" and data["spec"]["bidirectional"]
    assert data["verification"]["passed"]
    assert data["source"]["path"] == str(checkpoint.resolve())

    verified = run("verify", out, "--json", tmp_path / "report.json")
    assert verified.exit_code == 0, verified.output
    assert json.loads((tmp_path / "report.json").read_text())["passed"]


def test_export_nested_training_checkpoint(tmp_path) -> None:
    layer = nn.GRU(3, 5, batch_first=True).eval()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    checkpoint = tmp_path / "train.pt"
    torch.save(
        {"epoch": 3, "model_state_dict": layer.state_dict(), "optimizer": optimizer.state_dict()},
        checkpoint,
    )
    out = tmp_path / "out"
    result = run("export", checkpoint, "--batch-first", "-o", out)
    assert result.exit_code == 0, result.output
    assert manifest(out)["signature"]["inputs"][0]["dims"] == ["batch", "time", 3]


def test_export_safetensors_relu_rnn(tmp_path) -> None:
    layer = nn.RNN(3, 5, num_layers=2, nonlinearity="relu").eval()
    checkpoint = tmp_path / "rnn.safetensors"
    save_file(layer.state_dict(), checkpoint)
    out = tmp_path / "out"
    result = run("export", checkpoint, "--nonlinearity", "relu", "-o", out)
    assert result.exit_code == 0, result.output
    assert manifest(out)["spec"]["kind"] == "RNN_RELU"
    assert manifest(out)["source"]["format"] == "safetensors"


def test_export_projected_lstm_state_dict(tmp_path) -> None:
    layer = nn.LSTM(4, 8, num_layers=2, proj_size=3).eval()
    checkpoint = tmp_path / "proj.pt"
    torch.save(layer.state_dict(), checkpoint)
    result = run("export", checkpoint, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert manifest(tmp_path / "out")["spec"]["proj_size"] == 3


def test_export_user_module_class(tmp_path, monkeypatch) -> None:
    (tmp_path / "my_models.py").write_text(
        textwrap.dedent(
            """
            from torch import nn

            class Encoder(nn.LSTM):
                def __init__(self, hidden):
                    super().__init__(4, hidden, num_layers=2)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_models  # noqa: F401  (importable, as the CLI will find it)

    model = sys.modules["my_models"].Encoder(7).eval()
    checkpoint = tmp_path / "enc.pt"
    torch.save(model.state_dict(), checkpoint)
    out = tmp_path / "out"
    args = ("export", checkpoint, "--model", "my_models:Encoder", "-o", out)
    result = run(*args, "--init-args", '{"hidden": 7}')
    assert result.exit_code == 0, result.output
    assert manifest(out)["spec"]["hidden_size"] == 7

    assert_clean_error(run(*args[:-1], tmp_path / "o2", "--init-args", '{"hidden": 9}'),
                       "does not fit", "size mismatch", out_dir=tmp_path / "o2")  # fmt: skip
    assert_clean_error(run(*args[:-1], tmp_path / "o3", "--init-args", "{hidden"),
                       "--init-args", out_dir=tmp_path / "o3")  # fmt: skip
    no_colon = run("export", checkpoint, "--model", "my_models.Encoder", "-o", tmp_path / "o4")
    assert_clean_error(no_colon, "--model", out_dir=tmp_path / "o4")


def test_pickled_module_needs_trust(tmp_path) -> None:
    checkpoint = tmp_path / "full.pt"
    torch.save(nn.GRU(3, 4).eval(), checkpoint)
    out = tmp_path / "out"
    assert_clean_error(run("export", checkpoint, "-o", out), "--trust-checkpoint", out_dir=out)
    result = run("export", checkpoint, "--trust-checkpoint", "-o", out)
    assert result.exit_code == 0, result.output


def test_format_opset_stateless_and_no_verify(lstm_checkpoint, tmp_path) -> None:
    _, checkpoint = lstm_checkpoint
    out = tmp_path / "out"
    args = ("--format", "onnx", "--opset", "20", "--stateless", "--no-verify")
    result = run("export", checkpoint, *args, "-o", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "rnnx.json"]
    data = manifest(out)
    assert data["opset"] == 20 and data["verification"] is None
    assert [t["name"] for t in data["signature"]["inputs"]] == ["input"]
    assert run("verify", out).exit_code == 0


def test_existing_output_needs_force(lstm_checkpoint, tmp_path) -> None:
    _, checkpoint = lstm_checkpoint
    out = tmp_path / "out"
    assert run("export", checkpoint, "-o", out, "--format", "onnx").exit_code == 0
    result = run("export", checkpoint, "-o", out)
    assert_clean_error(result, str(out), "--force")
    assert run("export", checkpoint, "-o", out, "--force").exit_code == 0
    assert (out / "model.torchscript.pt").exists()


@pytest.mark.parametrize(
    "make_file, needles",
    [
        (lambda p: None, ["not found"]),
        (lambda p: p.write_bytes(b"\x00\x01 not a checkpoint"), ["not a PyTorch"]),
        (lambda p: p.write_text("hello"), ["not a PyTorch"]),
        (lambda p: torch.save(nn.Linear(3, 4).state_dict(), p), ["weight"]),
        (lambda p: torch.save({"state_dict": nn.GRU(3, 4).state_dict(),
                               "model": nn.GRU(3, 5).state_dict()}, p), ["ambiguous"]),
        (lambda p: torch.save({"epoch": 3, "lr": 0.1}, p), ["epoch"]),
        (lambda p: torch.save({**nn.LSTM(3, 4).state_dict(),
                               "weight_hh_l0": torch.zeros(16, 5)}, p), ["weight_hh_l0"]),
    ],
    ids=["missing", "garbage", "text", "not-recurrent", "ambiguous", "no-state-dict", "bad-shape"],
)  # fmt: skip
def test_bad_checkpoints_give_one_line_errors(tmp_path, make_file, needles) -> None:
    checkpoint = tmp_path / "ckpt.pt"
    make_file(checkpoint)
    out = tmp_path / "out"
    assert_clean_error(run("export", checkpoint, "-o", out), *needles, out_dir=out)


def test_bad_options_give_one_line_errors(lstm_checkpoint, tmp_path) -> None:
    _, checkpoint = lstm_checkpoint
    out = tmp_path / "out"
    assert_clean_error(
        run("export", checkpoint, "--opset", "12", "-o", out), "--opset", out_dir=out
    )
    result = run("export", checkpoint, "--nonlinearity", "relu", "-o", out)
    assert_clean_error(result, "--nonlinearity", out_dir=out)


def test_verify_notices_a_changed_checkpoint(lstm_checkpoint, tmp_path) -> None:
    _, checkpoint = lstm_checkpoint
    out = tmp_path / "out"
    assert run("export", checkpoint, "-o", out).exit_code == 0
    torch.save(nn.LSTM(4, 6, num_layers=2, bidirectional=True).state_dict(), checkpoint)
    assert_clean_error(run("verify", out), "changed")
    # The user points at the new weights explicitly: now the artifacts really differ.
    result = run("verify", out, "--checkpoint", checkpoint)
    assert_clean_error(result, "verification failed")
    assert "FAIL onnx" in result.output


def test_verify_errors(lstm_checkpoint, tmp_path) -> None:
    assert_clean_error(run("verify", tmp_path / "missing"), "not found")
    assert_clean_error(run("verify", tmp_path), "not an rnnx export directory")
    _, checkpoint = lstm_checkpoint
    out = tmp_path / "out"
    assert run("export", checkpoint, "-o", out, "--no-verify").exit_code == 0
    (out / "model.onnx").write_bytes(b"truncated")
    assert_clean_error(run("verify", out), "onnxruntime cannot load", "model.onnx")
    (out / "model.onnx").unlink()
    assert_clean_error(run("verify", out), "missing", "model.onnx")


def test_unsupported_modules_are_refused(tmp_path) -> None:
    checkpoint = tmp_path / "linear.pt"
    torch.save(nn.Linear(3, 4), checkpoint)
    out = tmp_path / "out"
    result = run("export", checkpoint, "--trust-checkpoint", "-o", out)
    assert_clean_error(result, "Linear", "nn.LSTM", out_dir=out)


def test_installed_command_in_a_subprocess(lstm_checkpoint, tmp_path) -> None:
    _, checkpoint = lstm_checkpoint
    command = Path(sys.executable).parent / "rnnx"
    out = tmp_path / "out"
    done = subprocess.run(
        [command, "export", checkpoint, "-o", out], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (out / "model.onnx").exists()
    failed = subprocess.run([command, "export", tmp_path / "nope.pt", "-o", tmp_path / "x"],
                            capture_output=True, text=True)  # fmt: skip
    assert failed.returncode == 1
    assert (
        failed.stderr.strip().splitlines()
        == [f"rnnx: error: checkpoint '{tmp_path / 'nope.pt'}' not found"]
        or "not found" in failed.stderr
    )


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys, rnnx.cli; sys.exit(int({'torch', 'onnxruntime'} & set(sys.modules) != set()))"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
