"""Small reference models used by the demo, the tests and the benchmarks."""

from __future__ import annotations

from torch import nn


def keyword_spotter_lstm() -> nn.LSTM:
    """The recurrent core of a small wake-word detector: 40 log-mel features per 10 ms frame,
    two batch_first LSTM layers of 64 units, streamed frame by frame in deployment."""
    return nn.LSTM(input_size=40, hidden_size=64, num_layers=2, batch_first=True).eval()
