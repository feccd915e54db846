"""CRNN text-line recogniser (meijieru/crnn.pytorch): CNN over a (B, 1, H, W) image, width -> time.

Source: https://github.com/meijieru/crnn.pytorch, models/crnn.py
Commit: 3cc7904c5ba20b18fcdc2d02ac2b24a9be9eafaf
License: MIT (tests/corpus/LICENSES/crnn.pytorch.txt)
Copyright (c) 2017 Jieru Mei <meijieru@gmail.com>
Changed: nothing in the classes except formatting by ruff (quotes, line breaks) and lint
directives. build(), example_inputs() and other_inputs() below are glue for the rnnx corpus test.
"""
# ruff: noqa: UP008, UP030, UP032

import torch
import torch.nn as nn


class BidirectionalLSTM(nn.Module):
    def __init__(self, nIn, nHidden, nOut):
        super(BidirectionalLSTM, self).__init__()

        self.rnn = nn.LSTM(nIn, nHidden, bidirectional=True)
        self.embedding = nn.Linear(nHidden * 2, nOut)

    def forward(self, input):
        recurrent, _ = self.rnn(input)
        T, b, h = recurrent.size()
        t_rec = recurrent.view(T * b, h)

        output = self.embedding(t_rec)  # [T * b, nOut]
        output = output.view(T, b, -1)

        return output


class CRNN(nn.Module):
    def __init__(self, imgH, nc, nclass, nh, n_rnn=2, leakyRelu=False):
        super(CRNN, self).__init__()
        assert imgH % 16 == 0, "imgH has to be a multiple of 16"

        ks = [3, 3, 3, 3, 3, 3, 2]
        ps = [1, 1, 1, 1, 1, 1, 0]
        ss = [1, 1, 1, 1, 1, 1, 1]
        nm = [64, 128, 256, 256, 512, 512, 512]

        cnn = nn.Sequential()

        def convRelu(i, batchNormalization=False):
            nIn = nc if i == 0 else nm[i - 1]
            nOut = nm[i]
            cnn.add_module("conv{0}".format(i), nn.Conv2d(nIn, nOut, ks[i], ss[i], ps[i]))
            if batchNormalization:
                cnn.add_module("batchnorm{0}".format(i), nn.BatchNorm2d(nOut))
            if leakyRelu:
                cnn.add_module("relu{0}".format(i), nn.LeakyReLU(0.2, inplace=True))
            else:
                cnn.add_module("relu{0}".format(i), nn.ReLU(True))

        convRelu(0)
        cnn.add_module("pooling{0}".format(0), nn.MaxPool2d(2, 2))  # 64x16x64
        convRelu(1)
        cnn.add_module("pooling{0}".format(1), nn.MaxPool2d(2, 2))  # 128x8x32
        convRelu(2, True)
        convRelu(3)
        cnn.add_module("pooling{0}".format(2), nn.MaxPool2d((2, 2), (2, 1), (0, 1)))  # 256x4x16
        convRelu(4, True)
        convRelu(5)
        cnn.add_module("pooling{0}".format(3), nn.MaxPool2d((2, 2), (2, 1), (0, 1)))  # 512x2x16
        convRelu(6, True)  # 512x1x16

        self.cnn = cnn
        self.rnn = nn.Sequential(BidirectionalLSTM(512, nh, nh), BidirectionalLSTM(nh, nh, nclass))

    def forward(self, input):
        # conv features
        conv = self.cnn(input)
        b, c, h, w = conv.size()
        assert h == 1, "the height of conv must be 1"
        conv = conv.squeeze(2)
        conv = conv.permute(2, 0, 1)  # [w, b, c]

        # rnn features
        output = self.rnn(conv)

        return output


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = ["conv-front-end", "image-width-time", "subsampling", "python-shape-logic"]


def build() -> nn.Module:
    torch.manual_seed(0)
    # demo.py: crnn.CRNN(32, 1, 37, 256); a smaller hidden size keeps the test fast
    model = CRNN(32, 1, 37, 32).eval()
    with torch.no_grad():  # random BatchNorm statistics, so eval mode is not an identity
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model


def _inputs(batch: int, width: int) -> tuple:
    # demo.py: a grey-scale text line resized to height 32, normalised to [-1, 1]
    generator = torch.Generator().manual_seed(batch * 1000 + width)
    return (torch.rand(batch, 1, 32, width, generator=generator) * 2 - 1,)


def example_inputs() -> tuple:
    return _inputs(batch=2, width=100)  # 26 time steps


def other_inputs() -> tuple:
    return _inputs(batch=3, width=64)  # 17 time steps
