"""Checkpoint loading: every accepted file layout, and a one-line CheckpointError for the rest."""

from __future__ import annotations

import json
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from rnnx.core.errors import CheckpointError, RnnxError, UnsupportedModelError
from rnnx.core.spec import LayerSpec
from rnnx.exporter.checkpoint import LoadOptions, load_checkpoint, load_module_from_source

# name -> (layer factory, the options a bare state dict of it needs)
LAYERS = {
    "lstm_bi": (lambda: nn.LSTM(3, 5, 2, bidirectional=True), LoadOptions()),
    "lstm_bi_nobias": (
        lambda: nn.LSTM(3, 5, num_layers=3, bidirectional=True, bias=False),
        LoadOptions(),
    ),
    "lstm_proj": (lambda: nn.LSTM(3, 5, proj_size=2), LoadOptions()),
    "lstm_proj_bi": (
        lambda: nn.LSTM(3, 6, num_layers=2, proj_size=2, bidirectional=True),
        LoadOptions(),
    ),
    "gru_batch_first": (lambda: nn.GRU(3, 4, batch_first=True), LoadOptions(batch_first=True)),
    "gru_nobias": (lambda: nn.GRU(3, 4, num_layers=2, bias=False), LoadOptions()),
    "rnn_tanh": (lambda: nn.RNN(3, 4), LoadOptions()),
    "rnn_relu": (
        lambda: nn.RNN(3, 5, num_layers=2, nonlinearity="relu"),
        LoadOptions(nonlinearity="relu"),
    ),
}

TAGGER = """
from torch import nn


class Tagger(nn.Module):
    def __init__(self, features=3, hidden=4, classes=2):
        super().__init__()
        self.gru = nn.GRU(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.head(self.gru(x)[0])
"""


@pytest.fixture
def tagger(tmp_path, monkeypatch) -> type[nn.Module]:
    """A user's model class, importable as 'rnnx_test_tagger:Tagger'."""
    (tmp_path / "rnnx_test_tagger.py").write_text(textwrap.dedent(TAGGER))
    monkeypatch.syspath_prepend(str(tmp_path))
    import rnnx_test_tagger

    yield rnnx_test_tagger.Tagger
    sys.modules.pop("rnnx_test_tagger", None)


def load_error(path: Path, options: LoadOptions | None = None) -> str:
    """The message of the CheckpointError loading `path` raises; it must be one line."""
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path, options or LoadOptions())
    message = str(caught.value)
    assert isinstance(caught.value, RnnxError) and "\n" not in message, message
    return message


def assert_same_outputs(a: nn.Module, b: nn.Module, input_size: int = 3) -> None:
    x = torch.randn(2, 6, input_size)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


@pytest.mark.parametrize("name", LAYERS)
def test_flat_state_dict_of_every_layer_kind(tmp_path, name: str) -> None:
    make, options = LAYERS[name]
    layer = make().eval()
    path = tmp_path / f"{name}.pt"
    torch.save(layer.state_dict(), path)
    loaded = load_checkpoint(path, options)
    assert loaded.spec == LayerSpec.from_module(layer)
    assert not loaded.module.training
    assert_same_outputs(loaded.module, layer)
    assert loaded.source["contents"] == "state_dict" and loaded.source["key"] is None
    assert loaded.source["format"] == "torch" and loaded.source["path"] == str(path.resolve())
    json.dumps(loaded.source)  # it goes into the manifest as is


def test_nested_training_checkpoint_ignores_optimizer_and_epoch(tmp_path) -> None:
    layer = nn.LSTM(3, 5, 2, bidirectional=True).eval()
    optimizer = torch.optim.Adam(layer.parameters())
    layer(torch.randn(4, 2, 3))[0].sum().backward()
    optimizer.step()
    checkpoint = {
        "epoch": 7,
        "optimizer": optimizer.state_dict(),
        "model_state_dict": layer.state_dict(),
    }
    torch.save(checkpoint, tmp_path / "train.pt")
    loaded = load_checkpoint(tmp_path / "train.pt")
    assert loaded.source["contents"] == "nested_state_dict"
    assert loaded.source["key"] == "model_state_dict"
    assert_same_outputs(loaded.module, layer)


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_data_parallel_prefix_is_stripped(tmp_path, nested: bool) -> None:
    layer = nn.GRU(3, 4).eval()
    state = {f"module.{k}": v for k, v in layer.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 1} if nested else state, tmp_path / "dp.pt")
    loaded = load_checkpoint(tmp_path / "dp.pt")
    assert loaded.spec == LayerSpec.from_module(layer)
    assert_same_outputs(loaded.module, layer)


def test_the_same_weights_under_two_keys_are_not_ambiguous(tmp_path) -> None:
    layer = nn.GRU(3, 4).eval()
    torch.save({"model": layer.state_dict(), "state_dict": layer.state_dict()}, tmp_path / "a.pt")
    assert load_checkpoint(tmp_path / "a.pt").source["key"] == "state_dict"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes_load_as_float32(tmp_path, dtype: torch.dtype) -> None:
    layer = nn.LSTM(3, 4).eval()
    torch.save({k: v.to(dtype) for k, v in layer.state_dict().items()}, tmp_path / "w.pt")
    loaded = load_checkpoint(tmp_path / "w.pt")
    for name, parameter in loaded.module.named_parameters():
        assert parameter.dtype == torch.float32
        torch.testing.assert_close(parameter, getattr(layer, name).to(dtype).float())


def test_safetensors_file(tmp_path) -> None:
    layer = nn.RNN(3, 5, num_layers=2, nonlinearity="relu").eval()
    save_file(layer.state_dict(), tmp_path / "rnn.safetensors")
    loaded = load_checkpoint(tmp_path / "rnn.safetensors", LoadOptions(nonlinearity="relu"))
    assert loaded.source["format"] == "safetensors"
    assert loaded.spec == LayerSpec.from_module(layer)
    assert_same_outputs(loaded.module, layer)


def test_user_module_class(tmp_path, tagger) -> None:
    model = tagger(hidden=6).eval()
    torch.save({"model": model.state_dict()}, tmp_path / "tagger.pt")
    options = LoadOptions(model="rnnx_test_tagger:Tagger", init_args={"hidden": 6})
    loaded = load_checkpoint(tmp_path / "tagger.pt", options)
    assert isinstance(loaded.module, tagger) and loaded.spec is None
    assert not loaded.module.training
    assert loaded.source["model"] == "rnnx_test_tagger:Tagger"
    assert loaded.source["init_args"] == {"hidden": 6}
    assert_same_outputs(loaded.module, model)
    recorded = json.loads(json.dumps(loaded.source))
    with pytest.raises(CheckpointError, match="pass --model again"):
        load_module_from_source(recorded)  # the manifest alone grants no import
    trust = LoadOptions(model="rnnx_test_tagger:Tagger")  # init_args: the recorded ones
    assert_same_outputs(load_module_from_source(recorded, trust), model)


def test_user_module_class_errors(tmp_path, tagger) -> None:
    path = tmp_path / "tagger.pt"
    state = tagger().state_dict()
    del state["head.bias"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, path)
    message = load_error(path, LoadOptions(model="rnnx_test_tagger:Tagger"))
    assert "head.bias" in message and "extra.weight" in message and "tagger.pt" in message

    torch.save(tagger(hidden=4).state_dict(), path)
    options = LoadOptions(model="rnnx_test_tagger:Tagger", init_args={"hidden": 9})
    message = load_error(path, options)
    assert "size mismatch" in message and "gru.weight_hh_l0" in message

    # Many keys are listed briefly: 6 missing, 4 unexpected.
    torch.save(nn.LSTM(3, 4).state_dict(), path)
    message = load_error(path, LoadOptions(model="rnnx_test_tagger:Tagger"))
    assert "…and 1 more" in message and "weight_ih_l0" in message


@pytest.mark.parametrize(
    "model, init_args, needles",
    [
        ("rnnx_test_tagger.Tagger", {}, ["--model", "package.module:Class"]),
        ("no_such_package_xyz:Model", {}, ["--model", "no_such_package_xyz"]),
        ("rnnx_test_tagger:Nope", {}, ["--model", "Nope"]),
        ("rnnx_test_tagger:Tagger", {"bogus": 1}, ["--init-args", "bogus"]),
    ],
    ids=["no-colon", "no-module", "no-class", "bad-init-args"],
)
def test_bad_model_options(tmp_path, tagger, model, init_args, needles) -> None:
    torch.save(tagger().state_dict(), tmp_path / "tagger.pt")
    message = load_error(tmp_path / "tagger.pt", LoadOptions(model=model, init_args=init_args))
    for needle in needles:
        assert needle in message, message


def test_pickled_module_needs_trust(tmp_path) -> None:
    layer = nn.GRU(3, 4, num_layers=2).eval()
    torch.save(layer, tmp_path / "full.pt")
    message = load_error(tmp_path / "full.pt")
    assert "full.pt" in message and "pickled module" in message
    assert "--trust-checkpoint" in message

    loaded = load_checkpoint(tmp_path / "full.pt", LoadOptions(trust_checkpoint=True))
    assert loaded.source["contents"] == "module" and loaded.source["trust_checkpoint"]
    assert loaded.spec == LayerSpec.from_module(layer)
    assert_same_outputs(loaded.module, layer)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_module_from_source(loaded.source)  # the recorded trust is not trust
    trusted = load_module_from_source(loaded.source, LoadOptions(trust_checkpoint=True))
    assert_same_outputs(trusted, layer)


def test_trusted_module_nested_in_a_training_checkpoint(tmp_path) -> None:
    layer = nn.LSTM(3, 4).eval()
    torch.save({"model": layer, "epoch": 2}, tmp_path / "train.pt")
    assert "--trust-checkpoint" in load_error(tmp_path / "train.pt")
    loaded = load_checkpoint(tmp_path / "train.pt", LoadOptions(trust_checkpoint=True))
    assert loaded.source["contents"] == "module" and loaded.source["key"] == "model"
    assert_same_outputs(loaded.module, layer)


def _zip_without_torch(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes/readme.txt", "hello")


@pytest.mark.parametrize(
    "name, write, needles",
    [
        ("missing.pt", lambda p: None, ["not found"]),
        ("garbage.pt", lambda p: p.write_bytes(bytes(range(256)) * 4), ["not a PyTorch"]),
        ("notes.txt", lambda p: p.write_text("hello world\n"), ["not a PyTorch"]),
        ("empty.pt", lambda p: p.write_bytes(b""), ["not a PyTorch"]),
        ("archive.zip", _zip_without_torch, ["not a PyTorch"]),
        ("bad.safetensors", lambda p: p.write_bytes(b"\x08" + bytes(20)), ["not a PyTorch"]),
        ("tensor.pt", lambda p: torch.save(torch.zeros(3), p), ["Tensor", "not a state dict"]),
        ("linear.pt", lambda p: torch.save(nn.Linear(3, 4).state_dict(), p), ["--model"]),
        (
            "ambiguous.pt",
            lambda p: torch.save(
                {"state_dict": nn.GRU(3, 4).state_dict(), "model": nn.GRU(3, 5).state_dict()}, p
            ),
            ["ambiguous", "'state_dict'", "'model'"],
        ),
        (
            "no_weights.pt",
            lambda p: torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, p),
            ["no state dict", "'epoch'", "'optimizer'"],
        ),
        (
            "bad_shape.pt",
            lambda p: torch.save({**nn.LSTM(3, 4).state_dict(),
                                  "weight_hh_l0": torch.zeros(16, 5)}, p),
            ["weight_hh_l0"],
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)  # fmt: skip
def test_bad_files_give_one_line_errors(tmp_path, name, write, needles) -> None:
    path = tmp_path / name
    write(path)
    message = load_error(path)
    assert str(path) in message, message
    for needle in needles:
        assert needle in message, message


def test_directory_is_refused(tmp_path) -> None:
    message = load_error(tmp_path)
    assert str(tmp_path) in message and "not a file" in message


def test_source_rebuilds_the_module(tmp_path) -> None:
    layer = nn.LSTM(3, 4, batch_first=True).eval()
    torch.save({"state_dict": layer.state_dict()}, tmp_path / "a.pt")
    loaded = load_checkpoint(tmp_path / "a.pt", LoadOptions(batch_first=True))
    rebuilt = load_module_from_source(json.loads(json.dumps(loaded.source)))
    assert LayerSpec.from_module(rebuilt) == loaded.spec and loaded.spec.batch_first
    assert_same_outputs(rebuilt, layer)


def test_source_refuses_a_changed_or_moved_file(tmp_path) -> None:
    path = tmp_path / "a.pt"
    torch.save(nn.GRU(3, 4).state_dict(), path)
    source = load_checkpoint(path).source
    torch.save(nn.GRU(3, 4).state_dict(), path)  # new random weights, same architecture
    with pytest.raises(CheckpointError) as caught:
        load_module_from_source(source)
    assert str(path.resolve()) in str(caught.value) and "changed since export" in str(caught.value)
    # Without a recorded hash (verify --checkpoint points at a new file) it loads.
    assert isinstance(load_module_from_source({**source, "sha256": None}), nn.GRU)

    path.rename(tmp_path / "b.pt")
    with pytest.raises(CheckpointError) as caught:
        load_module_from_source(source)
    assert str(path.resolve()) in str(caught.value) and "--checkpoint" in str(caught.value)


def test_layer_spec_rejects_impossible_layers() -> None:
    with pytest.raises(UnsupportedModelError, match="proj_size"):
        LayerSpec(kind="GRU", input_size=3, hidden_size=4, proj_size=2)
    with pytest.raises(UnsupportedModelError, match="not an nn.RNN"):
        LayerSpec.from_module(nn.Linear(3, 4))
