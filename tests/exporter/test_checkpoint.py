"""Checkpoint loading and architecture inference from state dicts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnx.errors import CheckpointError, UnsupportedModelError
from rnnx.exporter.checkpoint import LoadOptions, load_checkpoint, load_module_from_source
from rnnx.exporter.spec import LayerSpec

LAYERS = {
    "rnn_relu": lambda: nn.RNN(3, 5, num_layers=2, nonlinearity="relu"),
    "lstm_bi_nobias": lambda: nn.LSTM(3, 5, num_layers=3, bidirectional=True, bias=False),
    "lstm_proj": lambda: nn.LSTM(3, 6, num_layers=2, proj_size=2, bidirectional=True),
    "gru": lambda: nn.GRU(3, 5, batch_first=True),
}


@pytest.mark.parametrize("name", LAYERS)
def test_spec_inferred_from_state_dict_matches_module(name: str) -> None:
    layer = LAYERS[name]()
    spec = LayerSpec.from_state_dict(
        layer.state_dict(),
        nonlinearity=getattr(layer, "nonlinearity", "tanh"),
        batch_first=layer.batch_first,
    )
    assert spec == LayerSpec.from_module(layer)


def test_data_parallel_prefix_and_half_precision(tmp_path) -> None:
    layer = nn.GRU(3, 5).eval()
    state = {f"module.{k}": v.half() for k, v in layer.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 1}, tmp_path / "dp.pt")
    loaded = load_checkpoint(tmp_path / "dp.pt")
    assert loaded.source["contents"] == "nested_state_dict" and loaded.source["key"] == "state_dict"
    assert all(p.dtype == torch.float32 for p in loaded.module.parameters())
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(loaded.module(x)[0], layer.half().float()(x)[0])


def test_missing_and_unexpected_keys_are_named(tmp_path) -> None:
    state = nn.LSTM(3, 4).state_dict()
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="extra.weight"):
        load_checkpoint(tmp_path / "x.pt")
    del state["extra.weight"], state["bias_hh_l0"]
    torch.save(state, tmp_path / "y.pt")
    with pytest.raises(CheckpointError, match="bias_hh_l0"):
        load_checkpoint(tmp_path / "y.pt")


def test_source_rebuilds_the_module_and_notices_a_moved_file(tmp_path) -> None:
    layer = nn.LSTM(3, 4).eval()
    torch.save(layer.state_dict(), tmp_path / "a.pt")
    loaded = load_checkpoint(tmp_path / "a.pt", LoadOptions(batch_first=True))
    rebuilt = load_module_from_source(loaded.source)
    assert LayerSpec.from_module(rebuilt) == loaded.spec and loaded.spec.batch_first
    (tmp_path / "a.pt").rename(tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="--checkpoint"):
        load_module_from_source(loaded.source)


def test_directory_and_invalid_specs(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="not a file"):
        load_checkpoint(tmp_path)
    with pytest.raises(UnsupportedModelError, match="proj_size"):
        LayerSpec(kind="GRU", input_size=3, hidden_size=4, proj_size=2)
    with pytest.raises(UnsupportedModelError, match="not an nn.RNN"):
        LayerSpec.from_module(nn.Linear(3, 4))
