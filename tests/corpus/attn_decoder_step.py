"""The PyTorch seq2seq translation tutorial's attention decoder: ONE decoding step (a token, the
GRU state, the encoder outputs padded to MAX_LENGTH) -> log-probabilities, the new state and the
attention weights. It decodes one sentence at a time: batch 1 is built into forward.

Source: https://github.com/pytorch/tutorials, intermediate_source/seq2seq_translation_tutorial.py
(AttnDecoderRNN)
Commit: 803c1b1273a47bc53bb6cd5f63eecfb897bbc856
License: BSD-3-Clause (tests/corpus/LICENSES/pytorch-tutorials.txt)
Copyright (c) 2017-2025, Pytorch contributors
Changed: only the class is kept (the tutorial's data preparation, EncoderRNN, training and
plotting code dropped); `device` is the CPU; formatting by ruff and lint directives. The class is
as published. build(), example_inputs() and other_inputs() below are glue for the rnnx corpus
test.
"""
# ruff: noqa: UP008, N802

import torch
import torch.nn as nn
import torch.nn.functional as F

device = torch.device("cpu")
MAX_LENGTH = 10


class AttnDecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size, dropout_p=0.1, max_length=MAX_LENGTH):
        super(AttnDecoderRNN, self).__init__()
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.dropout_p = dropout_p
        self.max_length = max_length

        self.embedding = nn.Embedding(self.output_size, self.hidden_size)
        self.attn = nn.Linear(self.hidden_size * 2, self.max_length)
        self.attn_combine = nn.Linear(self.hidden_size * 2, self.hidden_size)
        self.dropout = nn.Dropout(self.dropout_p)
        self.gru = nn.GRU(self.hidden_size, self.hidden_size)
        self.out = nn.Linear(self.hidden_size, self.output_size)

    def forward(self, input, hidden, encoder_outputs):
        embedded = self.embedding(input).view(1, 1, -1)
        embedded = self.dropout(embedded)

        attn_weights = F.softmax(self.attn(torch.cat((embedded[0], hidden[0]), 1)), dim=1)
        attn_applied = torch.bmm(attn_weights.unsqueeze(0), encoder_outputs.unsqueeze(0))

        output = torch.cat((embedded[0], attn_applied[0]), 1)
        output = self.attn_combine(output).unsqueeze(0)

        output = F.relu(output)
        output, hidden = self.gru(output, hidden)

        output = F.log_softmax(self.out(output[0]), dim=1)
        return output, hidden, attn_weights

    def initHidden(self):
        return torch.zeros(1, 1, self.hidden_size, device=device)


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = ["step-model", "fixed-batch"]
STATIC = True  # batch 1 and MAX_LENGTH are built into forward: other inputs differ in values
WORDS, HIDDEN = 30, 16


def build() -> nn.Module:
    torch.manual_seed(0)
    return AttnDecoderRNN(HIDDEN, WORDS).eval()


def _inputs(token: int) -> tuple:
    # evaluate(): decoder_input (1, 1) token ids, decoder_hidden (1, 1, H), encoder_outputs
    # (MAX_LENGTH, H) zero-padded after the sentence
    generator = torch.Generator().manual_seed(token)
    hidden = torch.randn(1, 1, HIDDEN, generator=generator)
    encoder_outputs = torch.randn(MAX_LENGTH, HIDDEN, generator=generator)
    encoder_outputs[7:] = 0
    return torch.tensor([[token]]), hidden, encoder_outputs


def example_inputs() -> tuple:
    return _inputs(token=3)


def other_inputs() -> tuple:
    return _inputs(token=11)
