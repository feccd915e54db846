"""deepspeech.pytorch DeepSpeech2: Conv2d over a spectrogram, then packed BatchRNN layers.

Output lengths come from the conv strides (get_seq_lens), the conv output is masked per
utterance in a Python loop over the lengths (MaskConv), every BatchRNN packs its input, and a
unidirectional model ends with a lookahead convolution over 20 future frames.

Source: https://github.com/SeanNaren/deepspeech.pytorch, deepspeech_pytorch/model.py (and the
config dataclasses and RNNType from deepspeech_pytorch/configs/train_config.py, enums.py)
Commit: b88a631ef6b96553e16bbaa5bd6a621435bed278
License: MIT (tests/corpus/LICENSES/deepspeech.pytorch.txt)
Copyright (c) 2017 Sean Naren
Changed: DeepSpeech derives from nn.Module instead of pytorch_lightning.LightningModule, so
`self.save_hyperparameters()` is dropped and `OmegaConf.get_type(model_cfg)` reads
`type(model_cfg)`; the training-only members (CTC criterion, GreedyDecoder, WER/CER metrics,
training_step, validation_step, configure_optimizers) are dropped; SpectConfig,
BiDirectionalConfig, UniDirectionalConfig and RNNType are copied here with only the fields the
model reads; formatting by ruff and lint directives. forward, get_seq_lens and the layer
classes are as published. build(), example_inputs() and other_inputs() below are glue for the
rnnx corpus test.
"""
# ruff: noqa: UP006, UP007, UP008, UP035, UP045, E721, E501, SIM210

import math
from dataclasses import dataclass
from enum import Enum
from typing import List, Union

import torch
import torch.nn as nn
import torch.nn.functional as F


class RNNType(Enum):
    lstm = nn.LSTM
    rnn = nn.RNN
    gru = nn.GRU


@dataclass
class SpectConfig:
    sample_rate: int = 16000  # The sample rate for the data/model features
    window_size: float = 0.02  # Window size for spectrogram generation (seconds)
    window_stride: float = 0.01  # Window stride for spectrogram generation (seconds)


@dataclass
class BiDirectionalConfig:
    rnn_type: RNNType = RNNType.lstm  # Type of RNN to use in model
    hidden_size: int = 1024  # Hidden size of RNN Layer
    hidden_layers: int = 5  # Number of RNN layers


@dataclass
class UniDirectionalConfig(BiDirectionalConfig):
    lookahead_context: int = 20  # The lookahead context for convolution after RNN layers


class SequenceWise(nn.Module):
    def __init__(self, module):
        """
        Collapses input of dim T*N*H to (T*N)*H, and applies to a module.
        Allows handling of variable sequence lengths and minibatch sizes.
        :param module: Module to apply input to.
        """
        super(SequenceWise, self).__init__()
        self.module = module

    def forward(self, x):
        t, n = x.size(0), x.size(1)
        x = x.view(t * n, -1)
        x = self.module(x)
        x = x.view(t, n, -1)
        return x

    def __repr__(self):
        tmpstr = self.__class__.__name__ + " (\n"
        tmpstr += self.module.__repr__()
        tmpstr += ")"
        return tmpstr


class MaskConv(nn.Module):
    def __init__(self, seq_module):
        """
        Adds padding to the output of the module based on the given lengths. This is to ensure that the
        results of the model do not change when batch sizes change during inference.
        Input needs to be in the shape of (BxCxDxT)
        :param seq_module: The sequential module containing the conv stack.
        """
        super(MaskConv, self).__init__()
        self.seq_module = seq_module

    def forward(self, x, lengths):
        """
        :param x: The input of size BxCxDxT
        :param lengths: The actual length of each sequence in the batch
        :return: Masked output from the module
        """
        for module in self.seq_module:
            x = module(x)
            mask = torch.BoolTensor(x.size()).fill_(0)
            if x.is_cuda:
                mask = mask.cuda()
            for i, length in enumerate(lengths):
                length = length.item()
                if (mask[i].size(2) - length) > 0:
                    mask[i].narrow(2, length, mask[i].size(2) - length).fill_(1)
            x = x.masked_fill(mask, 0)
        return x, lengths


class InferenceBatchSoftmax(nn.Module):
    def forward(self, input_):
        if not self.training:
            return F.softmax(input_, dim=-1)
        else:
            return input_


class BatchRNN(nn.Module):
    def __init__(
        self, input_size, hidden_size, rnn_type=nn.LSTM, bidirectional=False, batch_norm=True
    ):
        super(BatchRNN, self).__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        self.batch_norm = SequenceWise(nn.BatchNorm1d(input_size)) if batch_norm else None
        self.rnn = rnn_type(
            input_size=input_size, hidden_size=hidden_size, bidirectional=bidirectional, bias=True
        )
        self.num_directions = 2 if bidirectional else 1

    def flatten_parameters(self):
        self.rnn.flatten_parameters()

    def forward(self, x, output_lengths, h=None):
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        x = nn.utils.rnn.pack_padded_sequence(x, output_lengths)
        x, h = self.rnn(x, h)
        x, _ = nn.utils.rnn.pad_packed_sequence(x)
        if self.bidirectional:
            x = (
                x.view(x.size(0), x.size(1), 2, -1).sum(2).view(x.size(0), x.size(1), -1)
            )  # (TxNxH*2) -> (TxNxH) by sum
        return x, h


class Lookahead(nn.Module):
    # Wang et al 2016 - Lookahead Convolution Layer for Unidirectional Recurrent Neural Networks
    # input shape - sequence, batch, feature - TxNxH
    # output shape - same as input
    def __init__(self, n_features, context):
        super(Lookahead, self).__init__()
        assert context > 0
        self.context = context
        self.n_features = n_features
        self.pad = (0, self.context - 1)
        self.conv = nn.Conv1d(
            self.n_features,
            self.n_features,
            kernel_size=self.context,
            stride=1,
            groups=self.n_features,
            padding=0,
            bias=False,
        )

    def forward(self, x):
        x = x.transpose(0, 1).transpose(1, 2)
        x = F.pad(x, pad=self.pad, value=0)
        x = self.conv(x)
        x = x.transpose(1, 2).transpose(0, 1).contiguous()
        return x

    def __repr__(self):
        return (
            self.__class__.__name__
            + "("
            + "n_features="
            + str(self.n_features)
            + ", context="
            + str(self.context)
            + ")"
        )


class DeepSpeech(nn.Module):
    def __init__(
        self,
        labels: List,
        model_cfg: Union[UniDirectionalConfig, BiDirectionalConfig],
        precision: int,
        optim_cfg,
        spect_cfg: SpectConfig,
    ):
        super().__init__()
        self.model_cfg = model_cfg
        self.precision = precision
        self.optim_cfg = optim_cfg
        self.spect_cfg = spect_cfg
        self.bidirectional = True if type(model_cfg) is BiDirectionalConfig else False

        self.labels = labels
        num_classes = len(self.labels)

        self.conv = MaskConv(
            nn.Sequential(
                nn.Conv2d(1, 32, kernel_size=(41, 11), stride=(2, 2), padding=(20, 5)),
                nn.BatchNorm2d(32),
                nn.Hardtanh(0, 20, inplace=True),
                nn.Conv2d(32, 32, kernel_size=(21, 11), stride=(2, 1), padding=(10, 5)),
                nn.BatchNorm2d(32),
                nn.Hardtanh(0, 20, inplace=True),
            )
        )
        # Based on above convolutions and spectrogram size using conv formula (W - F + 2P)/ S+1
        rnn_input_size = int(
            math.floor((self.spect_cfg.sample_rate * self.spect_cfg.window_size) / 2) + 1
        )
        rnn_input_size = int(math.floor(rnn_input_size + 2 * 20 - 41) / 2 + 1)
        rnn_input_size = int(math.floor(rnn_input_size + 2 * 10 - 21) / 2 + 1)
        rnn_input_size *= 32

        self.rnns = nn.Sequential(
            BatchRNN(
                input_size=rnn_input_size,
                hidden_size=self.model_cfg.hidden_size,
                rnn_type=self.model_cfg.rnn_type.value,
                bidirectional=self.bidirectional,
                batch_norm=False,
            ),
            *(
                BatchRNN(
                    input_size=self.model_cfg.hidden_size,
                    hidden_size=self.model_cfg.hidden_size,
                    rnn_type=self.model_cfg.rnn_type.value,
                    bidirectional=self.bidirectional,
                )
                for x in range(self.model_cfg.hidden_layers - 1)
            ),
        )

        self.lookahead = (
            nn.Sequential(
                # consider adding batch norm?
                Lookahead(self.model_cfg.hidden_size, context=self.model_cfg.lookahead_context),
                nn.Hardtanh(0, 20, inplace=True),
            )
            if not self.bidirectional
            else None
        )

        fully_connected = nn.Sequential(
            nn.BatchNorm1d(self.model_cfg.hidden_size),
            nn.Linear(self.model_cfg.hidden_size, num_classes, bias=False),
        )
        self.fc = nn.Sequential(
            SequenceWise(fully_connected),
        )
        self.inference_softmax = InferenceBatchSoftmax()

    def forward(self, x, lengths, hs=None):
        lengths = lengths.cpu().int()
        output_lengths = self.get_seq_lens(lengths)
        x, _ = self.conv(x, output_lengths)

        sizes = x.size()
        x = x.view(sizes[0], sizes[1] * sizes[2], sizes[3])  # Collapse feature dimension
        x = x.transpose(1, 2).transpose(0, 1).contiguous()  # TxNxH

        # if hs is None, create a list of None values corresponding to the number of rnn layers
        if hs is None:
            hs = [None] * len(self.rnns)

        new_hs = []
        for i, rnn in enumerate(self.rnns):
            x, h = rnn(x, output_lengths, hs[i])
            new_hs.append(h)

        if not self.bidirectional:  # no need for lookahead layer in bidirectional
            x = self.lookahead(x)

        x = self.fc(x)
        x = x.transpose(0, 1)
        # identity in training mode, softmax in eval mode
        x = self.inference_softmax(x)
        return x, output_lengths, new_hs

    def get_seq_lens(self, input_length):
        """
        Given a 1D Tensor or Variable containing integer sequence lengths, return a 1D tensor or variable
        containing the size sequences that will be output by the network.
        :param input_length: 1D Tensor
        :return: 1D Tensor scaled by model
        """
        seq_len = input_length
        for m in self.conv.modules():
            if type(m) == nn.modules.conv.Conv2d:
                seq_len = (
                    seq_len + 2 * m.padding[1] - m.dilation[1] * (m.kernel_size[1] - 1) - 1
                ) // m.stride[1] + 1
        return seq_len.int()


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = [
    "conv-front-end",
    "subsampling",
    "host-lengths",
    "packed-no-total-length",
    "python-shape-logic",
    "list-state",
    "receptive-field",
]
LABELS = list("_'ABCDEFGHIJKLMNOPQRSTUVWXYZ ")  # labels.json
SPECT = SpectConfig(sample_rate=8000, window_size=0.01)  # 41 frequency bins


def build() -> nn.Module:
    torch.manual_seed(0)
    config = UniDirectionalConfig(hidden_size=32, hidden_layers=2, lookahead_context=5)
    model = DeepSpeech(LABELS, config, precision=32, optim_cfg=None, spect_cfg=SPECT).eval()
    with torch.no_grad():  # random BatchNorm statistics, so eval mode is not an identity
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model


def _inputs(lengths: list[int]) -> tuple:
    # inference.py / training_step: spect (B, 1, freq, T) padded, input_sizes (B,) int lengths,
    # sorted longest first (the data loader's collate) for pack_padded_sequence
    bins = int(SPECT.sample_rate * SPECT.window_size) // 2 + 1
    generator = torch.Generator().manual_seed(sum(lengths))
    spect = torch.randn(len(lengths), 1, bins, max(lengths), generator=generator)
    for i, length in enumerate(lengths):
        spect[i, :, :, length:] = 0.0
    return spect, torch.tensor(lengths, dtype=torch.int32)


def example_inputs() -> tuple:
    return _inputs([40, 31, 22])


def other_inputs() -> tuple:
    return _inputs([57, 57, 44, 30, 12])
