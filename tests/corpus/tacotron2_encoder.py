"""NVIDIA Tacotron 2 text encoder: 1-d convolutions, then a packed bidirectional LSTM.

Source: https://github.com/NVIDIA/tacotron2, model.py (Encoder) and layers.py (ConvNorm)
Commit: 185cd24e046cc1304b4f8e564734d2498c6e2e6f
License: BSD-3-Clause (tests/corpus/LICENSES/tacotron2.txt)
Copyright (c) 2018, NVIDIA Corporation
Changed: kept ConvNorm (layers.py) and Encoder (model.py) only; dropped the imports they do not
use (librosa, stft, utils); formatting by ruff and lint directives. An `HParams` namespace with
the hparams.py field names stands in for hparams.create_hparams(). build(), example_inputs()
and other_inputs() below are glue for the rnnx corpus test.
"""
# ruff: noqa: UP008

import types

import torch
from torch import nn
from torch.nn import functional as F


class ConvNorm(torch.nn.Module):
    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=1,
        stride=1,
        padding=None,
        dilation=1,
        bias=True,
        w_init_gain="linear",
    ):
        super(ConvNorm, self).__init__()
        if padding is None:
            assert kernel_size % 2 == 1
            padding = int(dilation * (kernel_size - 1) / 2)

        self.conv = torch.nn.Conv1d(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=bias,
        )

        torch.nn.init.xavier_uniform_(
            self.conv.weight, gain=torch.nn.init.calculate_gain(w_init_gain)
        )

    def forward(self, signal):
        conv_signal = self.conv(signal)
        return conv_signal


class Encoder(nn.Module):
    """Encoder module:
    - Three 1-d convolution banks
    - Bidirectional LSTM
    """

    def __init__(self, hparams):
        super(Encoder, self).__init__()

        convolutions = []
        for _ in range(hparams.encoder_n_convolutions):
            conv_layer = nn.Sequential(
                ConvNorm(
                    hparams.encoder_embedding_dim,
                    hparams.encoder_embedding_dim,
                    kernel_size=hparams.encoder_kernel_size,
                    stride=1,
                    padding=int((hparams.encoder_kernel_size - 1) / 2),
                    dilation=1,
                    w_init_gain="relu",
                ),
                nn.BatchNorm1d(hparams.encoder_embedding_dim),
            )
            convolutions.append(conv_layer)
        self.convolutions = nn.ModuleList(convolutions)

        self.lstm = nn.LSTM(
            hparams.encoder_embedding_dim,
            int(hparams.encoder_embedding_dim / 2),
            1,
            batch_first=True,
            bidirectional=True,
        )

    def forward(self, x, input_lengths):
        for conv in self.convolutions:
            x = F.dropout(F.relu(conv(x)), 0.5, self.training)

        x = x.transpose(1, 2)

        # pytorch tensor are not reversible, hence the conversion
        input_lengths = input_lengths.cpu().numpy()
        x = nn.utils.rnn.pack_padded_sequence(x, input_lengths, batch_first=True)

        self.lstm.flatten_parameters()
        outputs, _ = self.lstm(x)

        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True)

        return outputs

    def inference(self, x):
        for conv in self.convolutions:
            x = F.dropout(F.relu(conv(x)), 0.5, self.training)

        x = x.transpose(1, 2)

        self.lstm.flatten_parameters()
        outputs, _ = self.lstm(x)

        return outputs


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = ["conv-front-end", "packed-no-total-length", "host-lengths"]
EMBEDDING = 32  # hparams.py: encoder_embedding_dim=512


def build() -> nn.Module:
    torch.manual_seed(0)
    hparams = types.SimpleNamespace(
        encoder_n_convolutions=3, encoder_embedding_dim=EMBEDDING, encoder_kernel_size=5
    )
    return Encoder(hparams).eval()


def _inputs(lengths: list[int]) -> tuple:
    # Tacotron2.forward: embedded_inputs = self.embedding(text_inputs).transpose(1, 2), a
    # (B, C, T) batch sorted by length, longest first (TextMelCollate), with its lengths.
    generator = torch.Generator().manual_seed(sum(lengths))
    x = torch.randn(len(lengths), EMBEDDING, max(lengths), generator=generator)
    for i, length in enumerate(lengths):
        x[i, :, length:] = 0.0  # the embedding of the padding symbol, as collated
    return x, torch.tensor(lengths, dtype=torch.int64)


def example_inputs() -> tuple:
    return _inputs([9, 7, 4])


def other_inputs() -> tuple:
    return _inputs([13, 13, 10, 6, 2])
