"""Real-Time-Voice-Cloning's speaker encoder (GE2E): mel frames through a 3-layer LSTM, the last
layer's final state projected and L2-normalized into a speaker embedding.

Source: https://github.com/CorentinJ/Real-Time-Voice-Cloning, encoder/model.py
Commit: 9ddc17dea702a905c44acec91bf66efbcd84e78f
License: MIT (tests/corpus/LICENSES/real-time-voice-cloning.txt)
Copyright (c) 2019 Corentin Jemine
Changed: the hyperparameters imported from encoder.params_model / params_data are the
module-level constants below (at small sizes); the training-only parts (the similarity
parameters, loss, do_gradient_ops, similarity_matrix, loss, and the scipy/sklearn imports they
need) are dropped; formatting by ruff. __init__'s layers and forward are as published.
build(), example_inputs() and other_inputs() below are glue for the rnnx corpus test.
"""

import torch
from torch import nn

# encoder/params_data.py and params_model.py (published: 40, 256, 256, 3)
mel_n_channels = 40
model_hidden_size = 24
model_embedding_size = 16
model_num_layers = 3


class SpeakerEncoder(nn.Module):
    def __init__(self, device, loss_device):
        super().__init__()
        self.loss_device = loss_device

        # Network defition
        self.lstm = nn.LSTM(
            input_size=mel_n_channels,
            hidden_size=model_hidden_size,
            num_layers=model_num_layers,
            batch_first=True,
        ).to(device)
        self.linear = nn.Linear(
            in_features=model_hidden_size, out_features=model_embedding_size
        ).to(device)
        self.relu = torch.nn.ReLU().to(device)

    def forward(self, utterances, hidden_init=None):
        """
        Computes the embeddings of a batch of utterance spectrograms.

        :param utterances: batch of mel-scale filterbanks of same duration as a tensor of shape
        (batch_size, n_frames, n_channels)
        :param hidden_init: initial hidden state of the LSTM as a tensor of shape (num_layers,
        batch_size, hidden_size). Will default to a tensor of zeros if None.
        :return: the embeddings as a tensor of shape (batch_size, embedding_size)
        """
        # Pass the input through the LSTM layers and retrieve all outputs, the final hidden state
        # and the final cell state.
        out, (hidden, cell) = self.lstm(utterances, hidden_init)

        # We take only the hidden state of the last layer
        embeds_raw = self.relu(self.linear(hidden[-1]))

        # L2-normalize it
        embeds = embeds_raw / torch.norm(embeds_raw, dim=1, keepdim=True)

        return embeds


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = ["final-state-head"]


def build() -> nn.Module:
    torch.manual_seed(0)
    return SpeakerEncoder("cpu", "cpu").eval()


def _inputs(batch: int, frames: int) -> tuple:
    # encoder/inference.py embed_frames_batch: (n_utterances, n_frames, mel_n_channels)
    generator = torch.Generator().manual_seed(batch * 1000 + frames)
    return (torch.rand(batch, frames, mel_n_channels, generator=generator),)


def example_inputs() -> tuple:
    return _inputs(batch=2, frames=16)


def other_inputs() -> tuple:
    return _inputs(batch=3, frames=29)
