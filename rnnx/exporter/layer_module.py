"""Bare recurrent layers wrapped so that forward's arguments are the exported graph's inputs.

nn.LSTM takes `hx` as a tuple; the exported graph takes `input, h0, c0` as separate tensors.
"""

from __future__ import annotations

from torch import Tensor, nn


class StatefulLSTM(nn.Module):
    def __init__(self, layer: nn.LSTM) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, input: Tensor, h0: Tensor, c0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        output, (h_n, c_n) = self.layer(input, (h0, c0))
        return output, h_n, c_n


class StatefulRNN(nn.Module):
    """nn.RNN and nn.GRU: the state is h alone."""

    def __init__(self, layer: nn.RNNBase) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, input: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
        output, h_n = self.layer(input, h0)
        return output, h_n


class Stateless(nn.Module):
    """input -> output, states start at zero (the layer creates them for the input's batch)."""

    def __init__(self, layer: nn.RNNBase) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, input: Tensor) -> Tensor:
        return self.layer(input)[0]


def wrap_layer(layer: nn.RNNBase, *, stateless: bool) -> nn.Module:
    if stateless:
        return Stateless(layer).eval()
    if isinstance(layer, nn.LSTM):
        return StatefulLSTM(layer).eval()
    return StatefulRNN(layer).eval()
