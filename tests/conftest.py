"""Shared fixtures: small recurrent layers built in the tests themselves."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from rnnx.models.zoo import ZOO
from rnnx.pipeline import ExportOptions, export


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


# Representative rows for the pt2 format (AOTInductor compiles ~15 s a model, so not the whole
# table: benchmarks/pt2_conformance.py runs every bare-layer configuration and the zoo). The
# packages are compiled once per session and shared by the Python and C++ tests.
PT2_MODELS = {
    "rnn_tanh_batch_first": lambda: nn.RNN(4, 6, batch_first=True),
    "rnn_relu_2layer": lambda: nn.RNN(3, 5, num_layers=2, nonlinearity="relu"),
    "lstm_proj": lambda: nn.LSTM(5, 8, num_layers=2, proj_size=3),
    "gru_bidirectional": lambda: nn.GRU(4, 5, 2, bidirectional=True, batch_first=True, bias=False),
    "char_rnn_cell": ZOO["char_rnn_cell"],  # an nn.RNNCell in a whole model
    # batch_first and bidirectional, its output read by compiled code: the layout of the ATen
    # kernel's output (transposed for batch_first) must be the one Inductor assumes
    "bilstm_regressor": ZOO["bilstm_regressor"],
    "seq2seq_step_lstm": ZOO["seq2seq_step_lstm"],  # a whole model: token ids, 2-layer LSTM
}


@pytest.fixture(scope="session")
def pt2_exports(tmp_path_factory) -> dict[str, tuple[nn.Module, Path]]:
    """name -> (module, export directory holding model.pt2 only), unverified."""
    root = tmp_path_factory.mktemp("pt2-exports")
    torch.manual_seed(0)
    result = {}
    for name, make in PT2_MODELS.items():
        module = make().eval()
        export(module, root / name, ExportOptions(formats=("pt2",), verify=False))
        result[name] = (module, root / name)
    return result


@pytest.fixture(scope="session")
def js_hosts():
    """The web and node runtimes' browser and worker, shared by every test of the session
    (rnnx.runtimes.js_host starts each once); stopped when the session ends. Call it with a
    runtime's name to skip, with the one line saying what to install, where it cannot run."""
    from rnnx.formats import RUNTIMES, runtime_missing
    from rnnx.runtimes.js_host import close_shared

    def need(runtime: str) -> None:
        missing = runtime_missing(RUNTIMES[runtime])
        if missing:
            pytest.skip(missing)

    yield need
    close_shared()
