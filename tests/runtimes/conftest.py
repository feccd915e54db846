"""Export directories shared by the runtime tests (exporting takes about a second each)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnx.models import keyword_spotter_lstm
from rnnx.pipeline import ExportOptions, export

LAYERS = {
    "keyword_spotter": keyword_spotter_lstm,  # LSTM 40->64, 2 layers, batch_first
    "gru": lambda: nn.GRU(5, 7, num_layers=2),
    "rnn_relu": lambda: nn.RNN(5, 7, nonlinearity="relu", batch_first=True),
    "lstm_proj": lambda: nn.LSTM(5, 8, num_layers=2, proj_size=3),
    "lstm_bidirectional": lambda: nn.LSTM(5, 7, bidirectional=True),
}


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """name -> (module, export directory), exported once per test session."""
    root = tmp_path_factory.mktemp("exports")
    torch.manual_seed(0)
    result = {}
    for name, make in LAYERS.items():
        module = make().eval()
        export(module, root / name, ExportOptions(verify=False))
        result[name] = (module, root / name)
    return result
