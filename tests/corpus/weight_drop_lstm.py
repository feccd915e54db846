"""PyTorch-NLP WeightDropLSTM: a subclass of nn.LSTM whose forward is replaced per instance.

Source: https://github.com/PetrochukM/PyTorch-NLP, torchnlp/nn/weight_drop.py
Commit: 53d7edcb8e0c099efce7c2ddf8cd7c44157fcac3
License: BSD-3-Clause (tests/corpus/LICENSES/pytorch-nlp.txt)
Copyright (c) James Bradbury and Soumith Chintala 2016, All rights reserved.
Changed: kept _weight_drop and WeightDropLSTM (WeightDrop, WeightDropGRU, WeightDropLinear
dropped); formatting by ruff (quotes). build(), example_inputs() and other_inputs() below are
glue for the rnnx corpus test.
"""

import torch
from torch.nn import Parameter


def _weight_drop(module, weights, dropout):
    """
    Helper for `WeightDrop`.
    """

    for name_w in weights:
        w = getattr(module, name_w)
        del module._parameters[name_w]
        module.register_parameter(name_w + "_raw", Parameter(w))

    original_module_forward = module.forward

    def forward(*args, **kwargs):
        for name_w in weights:
            raw_w = getattr(module, name_w + "_raw")
            w = torch.nn.functional.dropout(raw_w, p=dropout, training=module.training)
            setattr(module, name_w, w)

        return original_module_forward(*args, **kwargs)

    setattr(module, "forward", forward)  # noqa: B010


class WeightDropLSTM(torch.nn.LSTM):
    """
    Wrapper around :class:`torch.nn.LSTM` that adds ``weight_dropout`` named argument.

    Args:
        weight_dropout (float): The probability a weight will be dropped.
    """

    def __init__(self, *args, weight_dropout=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        weights = ["weight_hh_l" + str(i) for i in range(self.num_layers)]
        _weight_drop(self, weights, weight_dropout)


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = ["subclass", "tuple-state"]
STREAMABLE = True
STREAM_TIME_AXES = {"inputs": 1, "outputs": 1}  # x (B, T, F); output (B, T, H)


def build() -> torch.nn.Module:
    torch.manual_seed(0)
    return WeightDropLSTM(8, 32, num_layers=2, batch_first=True, weight_dropout=0.5).eval()


def _inputs(batch: int, time: int) -> tuple:
    # nn.LSTM's own call: lstm(x, (h0, c0))
    generator = torch.Generator().manual_seed(batch * 100 + time)
    x = torch.randn(batch, time, 8, generator=generator)
    h0 = torch.randn(2, batch, 32, generator=generator)
    c0 = torch.randn(2, batch, 32, generator=generator)
    return x, (h0, c0)


def example_inputs() -> tuple:
    return _inputs(batch=4, time=7)


def other_inputs() -> tuple:
    return _inputs(batch=3, time=12)
