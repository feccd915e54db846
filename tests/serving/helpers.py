"""Helpers of the serving tests: stream sequences to a tritonserver over gRPC, compute eager."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rnnx.serving.server import Server, find_tritonserver

FEATURES, HIDDEN = 5, 8
IDLE_TIMEOUT_S = 2.0  # short, so that the vanished-client test waits only seconds
TOL = dict(atol=1e-5, rtol=1e-5)


def tritonserver_or_skip() -> None:
    """Skip only where the binary cannot run: nvidia-pytriton ships Linux wheels only. On Linux
    the test extra installs it, so a missing binary there fails the tests instead."""
    if not sys.platform.startswith("linux"):
        pytest.skip(f"tritonserver (nvidia-pytriton) runs on Linux only, not {sys.platform}")
    find_tritonserver()


def grpc_client(server: Server):
    import tritonclient.grpc as grpcclient

    return grpcclient.InferenceServerClient(server.grpc_url)


def send(client, sequence: int, chunk: np.ndarray, start=False, end=False) -> np.ndarray:
    """One chunk [time, features] of `sequence`; its output [time, hidden]."""
    import tritonclient.grpc as grpcclient

    batch_first = chunk[None]
    feed = grpcclient.InferInput("input", list(batch_first.shape), "FP32")
    feed.set_data_from_numpy(batch_first)
    result = client.infer(
        "lstm", [feed], sequence_id=sequence, sequence_start=start, sequence_end=end
    )
    return result.as_numpy("output")[0]


def stream(client, sequence: int, chunks: list[np.ndarray]) -> np.ndarray:
    outputs = [send(client, sequence, c, start=i == 0, end=i == len(chunks) - 1)
               for i, c in enumerate(chunks)]  # fmt: skip
    return np.concatenate(outputs)


def eager(module: nn.Module, sequence: np.ndarray) -> np.ndarray:
    """The module on the whole sequence [time, features] from zero states: [time, hidden]."""
    with torch.no_grad():
        return module(torch.from_numpy(sequence)[:, None])[0][:, 0].numpy()


def random_chunks(seed: int, lengths: list[int]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, FEATURES), dtype=np.float32) for n in lengths]


def log_of(server: Server) -> str:
    return Path(server.log_path).read_text(errors="replace")
