"""A real tritonserver (from the nvidia-pytriton wheel) serving an rnnx export, shared by the
serving tests (helpers in tests/serving/helpers.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnx.pipeline import ExportOptions, export
from rnnx.serving.config import TritonOptions
from rnnx.serving.server import Server
from rnnx.serving.triton import write_repository
from tests.serving.helpers import FEATURES, HIDDEN, IDLE_TIMEOUT_S, tritonserver_or_skip


@pytest.fixture(scope="session")
def served_model(tmp_path_factory):
    """(module, export dir, repository): a 2-layer time-major LSTM (the server moves Triton's
    batch-first chunks to the model's layout and back)."""
    tritonserver_or_skip()
    root = tmp_path_factory.mktemp("serving")
    torch.manual_seed(0)
    module = nn.LSTM(FEATURES, HIDDEN, num_layers=2).eval()
    export(module, root / "lstm", ExportOptions(verify=False))
    repository = root / "repository"
    write_repository(
        root / "lstm", repository, TritonOptions(model_name="lstm", max_batch=16,
                                                 idle_timeout_s=IDLE_TIMEOUT_S),
    )  # fmt: skip
    return module, root / "lstm", repository


@pytest.fixture(scope="session")
def server(served_model, tmp_path_factory):
    with Server(served_model[2], 0, 0, log=tmp_path_factory.mktemp("log") / "server.log") as s:
        yield s
