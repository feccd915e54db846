"""pytorch-sentiment-analysis's LSTM classifier: token ids packed by their (unsorted) lengths
through a 2-layer bidirectional LSTM, the top layer's two final states into a linear head.

Source: https://github.com/bentrevett/pytorch-sentiment-analysis, "2 - Recurrent Neural
Networks.ipynb" (the LSTM cell of the notebook)
Commit: 18d56faf7a32c4db5b279817868ba3c1c56bef51
License: MIT (tests/corpus/LICENSES/pytorch-sentiment-analysis.txt)
Copyright (c) 2017 Ben Trevett
Changed: the notebook's LSTM class only, as published (the notebook imports torch and
torch.nn as nn; the datasets, torchtext, training and plotting cells are dropped). build(),
example_inputs() and other_inputs() below are glue for the rnnx corpus test: the notebook's
hyperparameters (embedding and hidden 300, 2 layers, bidirectional, dropout 0.5) at small
sizes, its initialize_weights left out (random weights either way).
"""

import torch
import torch.nn as nn


class LSTM(nn.Module):
    def __init__(
        self,
        vocab_size,
        embedding_dim,
        hidden_dim,
        output_dim,
        n_layers,
        bidirectional,
        dropout_rate,
        pad_index,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_index)
        self.lstm = nn.LSTM(
            embedding_dim,
            hidden_dim,
            n_layers,
            bidirectional=bidirectional,
            dropout=dropout_rate,
            batch_first=True,
        )
        self.fc = nn.Linear(hidden_dim * 2 if bidirectional else hidden_dim, output_dim)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, ids, length):
        # ids = [batch size, seq len]
        # length = [batch size]
        embedded = self.dropout(self.embedding(ids))
        # embedded = [batch size, seq len, embedding dim]
        packed_embedded = nn.utils.rnn.pack_padded_sequence(
            embedded, length, batch_first=True, enforce_sorted=False
        )
        packed_output, (hidden, cell) = self.lstm(packed_embedded)
        # hidden = [n layers * n directions, batch size, hidden dim]
        # cell = [n layers * n directions, batch size, hidden dim]
        output, output_length = nn.utils.rnn.pad_packed_sequence(packed_output)
        # output = [batch size, seq len, hidden dim * n directions]
        if self.lstm.bidirectional:
            hidden = self.dropout(torch.cat([hidden[-1], hidden[-2]], dim=-1))
            # hidden = [batch size, hidden dim * 2]
        else:
            hidden = self.dropout(hidden[-1])
            # hidden = [batch size, hidden dim]
        prediction = self.fc(hidden)
        # prediction = [batch size, output dim]
        return prediction


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = ["packed-unsorted", "packed-no-total-length", "final-state-head"]
VOCAB = 60
PAD_INDEX = 1  # the notebook's vocab specials are ["<unk>", "<pad>"]


def build() -> nn.Module:
    torch.manual_seed(0)
    return LSTM(VOCAB, 16, 20, 2, n_layers=2, bidirectional=True, dropout_rate=0.5,
                pad_index=PAD_INDEX).eval()  # fmt: skip


def _inputs(lengths: list[int]) -> tuple:
    # get_collate_fn: ids padded with pad_index, batch_first, in the loader's (unsorted) order,
    # and the int64 lengths on the CPU
    generator = torch.Generator().manual_seed(sum(lengths))
    ids = torch.randint(2, VOCAB, (len(lengths), max(lengths)), generator=generator)
    for i, length in enumerate(lengths):
        ids[i, length:] = PAD_INDEX
    return ids, torch.tensor(lengths, dtype=torch.int64)


def example_inputs() -> tuple:
    return _inputs([5, 9, 3])


def other_inputs() -> tuple:
    return _inputs([7, 2, 12, 12, 4])
