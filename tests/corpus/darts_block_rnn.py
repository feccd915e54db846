"""darts BlockRNNModel's torch module: an LSTM encoder, a linear head on the last layer's h_n.

A time-series forecaster: `input_chunk_length` past steps in, `output_chunk_length` future
steps out. darts calls it with one tuple argument, (past series, static covariates).

Source: https://github.com/unit8co/darts, darts/models/forecasting/block_rnn_model.py
Commit: 40610458762040b0521154e74caf9723d862ca2e
License: Apache-2.0 (tests/corpus/LICENSES/darts.txt)
Copyright 2019 Unit8 SA
Changed: kept _BlockRNNModule only (BlockRNNModel, the darts training wrapper, dropped); its
base class darts.models.forecasting.pl_forecasting_module.PLPastCovariatesModule (a
pytorch_lightning module) is replaced by the stand-in below that only stores the chunk lengths
the module reads; the darts.logging import is dropped; formatting by ruff and lint directives.
_BlockRNNModule's own code is as published. build(), example_inputs() and other_inputs() below
are glue for the rnnx corpus test.
"""
# ruff: noqa: UP006, UP007, UP035, UP045, E501

from typing import List, Optional, Tuple

import torch
import torch.nn as nn


class PLPastCovariatesModule(nn.Module):
    """Stand-in (rnnx corpus glue) for darts' Lightning base class: the chunk lengths only."""

    def __init__(self, input_chunk_length: int, output_chunk_length: int, **kwargs):
        super().__init__()
        self.input_chunk_length = input_chunk_length
        self.output_chunk_length = output_chunk_length


# TODO add batch norm
class _BlockRNNModule(PLPastCovariatesModule):
    def __init__(
        self,
        name: str,
        input_size: int,
        hidden_dim: int,
        num_layers: int,
        target_size: int,
        nr_params: int,
        num_layers_out_fc: Optional[List] = None,
        dropout: float = 0.0,
        **kwargs,
    ):
        """PyTorch module implementing a block RNN to be used in `BlockRNNModel`.

        PyTorch module implementing a simple block RNN with the specified `name` layer.
        This module combines a PyTorch RNN module, together with a fully connected network, which maps the
        last hidden layers to output of the desired size `output_chunk_length` and makes it compatible with
        `BlockRNNModel`s.

        This module uses an RNN to encode the input sequence, and subsequently uses a fully connected
        network as the decoder which takes as input the last hidden state of the encoder RNN.
        The final output of the decoder is a sequence of length `output_chunk_length`. In this sense,
        the `_BlockRNNModule` produces 'blocks' of forecasts at a time (which is different
        from `_RNNModule` used by the `RNNModel`).

        Parameters
        ----------
        name
            The name of the specific PyTorch RNN module ("RNN", "GRU" or "LSTM").
        input_size
            The dimensionality of the input time series.
        hidden_dim
            The number of features in the hidden state `h` of the RNN module.
        num_layers
            The number of recurrent layers.
        target_size
            The dimensionality of the output time series.
        nr_params
            The number of parameters of the likelihood (or 1 if no likelihood is used).
        num_layers_out_fc
            A list containing the dimensions of the hidden layers of the fully connected NN.
            This network connects the last hidden layer of the PyTorch RNN module to the output.
        dropout
            The fraction of neurons that are dropped in all-but-last RNN layers.
        **kwargs
            all parameters required for :class:`darts.model.forecasting_models.PLForecastingModule` base class.

        Inputs
        ------
        x of shape `(batch_size, input_chunk_length, input_size, nr_params)`
            Tensor containing the features of the input sequence.

        Outputs
        -------
        y of shape `(batch_size, output_chunk_length, target_size, nr_params)`
            Tensor containing the prediction at the last time step of the sequence.
        """

        super().__init__(**kwargs)

        # Defining parameters
        self.hidden_dim = hidden_dim
        self.n_layers = num_layers
        self.target_size = target_size
        self.nr_params = nr_params
        num_layers_out_fc = [] if num_layers_out_fc is None else num_layers_out_fc
        self.out_len = self.output_chunk_length
        self.name = name

        # Defining the RNN module
        self.rnn = getattr(nn, name)(
            input_size, hidden_dim, num_layers, batch_first=True, dropout=dropout
        )

        # The RNN module is followed by a fully connected layer, which maps the last hidden layer
        # to the output of desired length
        last = hidden_dim
        feats = []
        for feature in num_layers_out_fc + [self.output_chunk_length * target_size * nr_params]:
            feats.append(nn.Linear(last, feature))
            last = feature
        self.fc = nn.Sequential(*feats)

    def forward(self, x_in: Tuple):
        x, _ = x_in
        # data is of size (batch_size, input_chunk_length, input_size)
        batch_size = x.size(0)

        out, hidden = self.rnn(x)

        """ Here, we apply the FC network only on the last output point (at the last time step)
        """
        if self.name == "LSTM":
            hidden = hidden[0]
        predictions = hidden[-1, :, :]
        predictions = self.fc(predictions)
        predictions = predictions.view(batch_size, self.out_len, self.target_size, self.nr_params)

        # predictions is of size (batch_size, output_chunk_length, 1)
        return predictions


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = ["python-shape-logic"]
TARGETS, COVARIATES = 2, 3


def build() -> nn.Module:
    torch.manual_seed(0)
    # BlockRNNModel._create_model: input_size = target + past covariate components
    return _BlockRNNModule(
        name="LSTM",
        input_size=TARGETS + COVARIATES,
        hidden_dim=32,
        num_layers=2,
        target_size=TARGETS,
        nr_params=1,
        num_layers_out_fc=[16],
        input_chunk_length=24,
        output_chunk_length=6,
    ).eval()


def _inputs(batch: int, time: int) -> tuple:
    # PLPastCovariatesModule._produce_train_output: self((past_target+covariates, static=None))
    generator = torch.Generator().manual_seed(batch * 100 + time)
    return ((torch.randn(batch, time, TARGETS + COVARIATES, generator=generator), None),)


def example_inputs() -> tuple:
    return _inputs(batch=4, time=24)


def other_inputs() -> tuple:
    return _inputs(batch=3, time=36)
