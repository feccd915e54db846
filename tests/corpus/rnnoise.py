"""RNNoise (xiph/rnnoise, PyTorch training code): noise suppression, convs then three GRUs.

The GRU states are passed in and returned as a list, so audio can be processed frame block by
frame block; the two 'valid' convolutions look 2 frames back (a receptive field of 5 frames).

Source: https://gitlab.xiph.org/xiph/rnnoise, mirrored at https://github.com/xiph/rnnoise,
torch/rnnoise/rnnoise.py
Commit: 70f1d256acd4b34a572f999a05c87bf00b67730d
License: BSD-3-Clause (tests/corpus/LICENSES/rnnoise.txt)
Copyright (c) 2024 Jean-Marc Valin
Changed: dropped the training-only sparsification (the GRUSparsifier import, the sparsify_*
settings, `self.sparsifier` in __init__ and the `sparsify` method) and the parameter-count
print in __init__; formatting by ruff and lint directives. Everything forward does is as
published. build(), example_inputs() and other_inputs() below are glue for the rnnx corpus test.
"""
# ruff: noqa: UP008

import torch
from torch import nn


def init_weights(module):
    if isinstance(module, nn.GRU):
        for p in module.named_parameters():
            if p[0].startswith("weight_hh_"):
                nn.init.orthogonal_(p[1])


class RNNoise(nn.Module):
    def __init__(self, input_dim=65, output_dim=32, cond_size=128, gru_size=256):
        super(RNNoise, self).__init__()

        self.input_dim = input_dim
        self.output_dim = output_dim
        self.cond_size = cond_size
        self.gru_size = gru_size
        self.conv1 = nn.Conv1d(input_dim, cond_size, kernel_size=3, padding="valid")
        self.conv2 = nn.Conv1d(cond_size, gru_size, kernel_size=3, padding="valid")
        self.gru1 = nn.GRU(self.gru_size, self.gru_size, batch_first=True)
        self.gru2 = nn.GRU(self.gru_size, self.gru_size, batch_first=True)
        self.gru3 = nn.GRU(self.gru_size, self.gru_size, batch_first=True)
        self.dense_out = nn.Linear(4 * self.gru_size, self.output_dim)
        self.vad_dense = nn.Linear(4 * self.gru_size, 1)
        self.apply(init_weights)

    def forward(self, features, states=None):
        # print(states)
        device = features.device
        batch_size = features.size(0)
        if states is None:
            gru1_state = torch.zeros((1, batch_size, self.gru_size), device=device)
            gru2_state = torch.zeros((1, batch_size, self.gru_size), device=device)
            gru3_state = torch.zeros((1, batch_size, self.gru_size), device=device)
        else:
            gru1_state = states[0]
            gru2_state = states[1]
            gru3_state = states[2]
        tmp = features.permute(0, 2, 1)
        tmp = torch.tanh(self.conv1(tmp))
        tmp = torch.tanh(self.conv2(tmp))
        tmp = tmp.permute(0, 2, 1)

        gru1_out, gru1_state = self.gru1(tmp, gru1_state)
        gru2_out, gru2_state = self.gru2(gru1_out, gru2_state)
        gru3_out, gru3_state = self.gru3(gru2_out, gru3_state)
        out_cat = torch.cat([tmp, gru1_out, gru2_out, gru3_out], dim=-1)
        gain = torch.sigmoid(self.dense_out(out_cat))
        vad = torch.sigmoid(self.vad_dense(out_cat))
        return gain, vad, [gru1_state, gru2_state, gru3_state]


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = ["list-state", "conv-front-end", "receptive-field"]
# The states carry over between calls, but the valid convolutions drop 4 frames per call, so
# chunked streaming equals the whole sequence only with the conv context carried too.
STREAMABLE = False
FEATURES = 65  # train_rnnoise.py: 65 features per 10 ms frame


def build() -> nn.Module:
    torch.manual_seed(0)
    return RNNoise(input_dim=FEATURES, cond_size=32, gru_size=32).eval()


def _inputs(batch: int, frames: int) -> tuple:
    # train_rnnoise.py: features (B, T, 65); rnnoise.forward(features, states) with the list of
    # three (1, B, gru_size) states the previous call returned
    generator = torch.Generator().manual_seed(batch * 1000 + frames)
    features = torch.randn(batch, frames, FEATURES, generator=generator)
    states = [torch.randn(1, batch, 32, generator=generator) * 0.5 for _ in range(3)]
    return features, states


def example_inputs() -> tuple:
    return _inputs(batch=2, frames=20)


def other_inputs() -> tuple:
    return _inputs(batch=3, frames=33)
