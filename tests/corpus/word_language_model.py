"""pytorch/examples word_language_model: an LSTM language model with (h, c) tuple states.

Source: https://github.com/pytorch/examples, word_language_model/model.py
Commit: 77f55b912142e11fcfdf5b530231fb9c52f181e8
License: BSD-3-Clause (tests/corpus/LICENSES/pytorch-examples.txt)
Copyright (c) 2017, Pytorch contributors
Changed: kept RNNModel only (PositionalEncoding and TransformerModel dropped); reformatted by
ruff (quotes, line breaks). The class body is otherwise as published. build(), example_inputs()
and other_inputs() below are glue for the rnnx corpus test.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super(RNNModel, self).__init__()  # noqa: UP008
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ["LSTM", "GRU"]:
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        else:
            try:
                nonlinearity = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}[rnn_type]
            except KeyError as e:
                raise ValueError(
                    """An invalid option for `--model` was supplied,
                                 options are ['LSTM', 'GRU', 'RNN_TANH' or 'RNN_RELU']"""
                ) from e
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)

        # Optionally tie weights as in:
        # "Using the Output Embedding to Improve Language Models" (Press & Wolf 2016)
        # https://arxiv.org/abs/1608.05859
        # and
        # "Tying Word Vectors and Word Classifiers: A Loss Framework for Language Modeling"
        # (Inan et al. 2016)
        # https://arxiv.org/abs/1611.01462
        if tie_weights:
            if nhid != ninp:
                raise ValueError("When using the tied flag, nhid must be equal to emsize")
            self.decoder.weight = self.encoder.weight

        self.init_weights()

        self.rnn_type = rnn_type
        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == "LSTM":
            return (
                weight.new_zeros(self.nlayers, bsz, self.nhid),
                weight.new_zeros(self.nlayers, bsz, self.nhid),
            )
        else:
            return weight.new_zeros(self.nlayers, bsz, self.nhid)


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = ["tuple-state", "derived-output-axis"]
STREAMABLE = True
STREAM_TIME_AXES = {"inputs": 0, "outputs": 0}  # tokens (T, B); log-probs (T*B, V)
NTOKEN = 50


def build() -> nn.Module:
    torch.manual_seed(0)
    return RNNModel("LSTM", NTOKEN, 16, 32, 2, dropout=0.2).eval()


def _inputs(model: RNNModel, batch: int, time: int) -> tuple:
    # main.py: data is (time, batch) token ids, hidden = model.init_hidden(batch_size)
    generator = torch.Generator().manual_seed(batch * 100 + time)
    tokens = torch.randint(0, NTOKEN, (time, batch), generator=generator)
    h, c = model.init_hidden(batch)
    h = torch.randn(h.shape, generator=generator)
    c = torch.randn(c.shape, generator=generator)
    return tokens, (h, c)


def example_inputs() -> tuple:
    return _inputs(build(), batch=4, time=7)


def other_inputs() -> tuple:
    return _inputs(build(), batch=3, time=11)
