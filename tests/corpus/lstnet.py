"""LSTNet (Lai et al., SIGIR 2018): multivariate time-series forecasting; a conv over a fixed
window, a GRU over its output, a skip-GRU over every `skip`-th step, and a linear highway.

Source: https://github.com/laiguokun/LSTNet, models/LSTNet.py
Commit: 0c7ea2f3aaeae6a37b46afcc79fa0d995fec7519
License: MIT (tests/corpus/LICENSES/lstnet.txt)
Copyright (c) 2019 Guokun Lai, Yiming Yang, Shinjae Yoo
Changed: formatting by ruff (which drops the published statement-ending semicolons) and lint
directives; `args` and `data` (main.py's argparse namespace and data loader) are
SimpleNamespace stand-ins built in build(). The Model class is as published. build(),
example_inputs() and other_inputs() below are glue for the rnnx corpus test.
"""
# ruff: noqa: UP008

from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, args, data):
        super(Model, self).__init__()
        self.use_cuda = args.cuda
        self.P = args.window
        self.m = data.m
        self.hidR = args.hidRNN
        self.hidC = args.hidCNN
        self.hidS = args.hidSkip
        self.Ck = args.CNN_kernel
        self.skip = args.skip
        self.pt = int((self.P - self.Ck) / self.skip)
        self.hw = args.highway_window
        self.conv1 = nn.Conv2d(1, self.hidC, kernel_size=(self.Ck, self.m))
        self.GRU1 = nn.GRU(self.hidC, self.hidR)
        self.dropout = nn.Dropout(p=args.dropout)
        if self.skip > 0:
            self.GRUskip = nn.GRU(self.hidC, self.hidS)
            self.linear1 = nn.Linear(self.hidR + self.skip * self.hidS, self.m)
        else:
            self.linear1 = nn.Linear(self.hidR, self.m)
        if self.hw > 0:
            self.highway = nn.Linear(self.hw, 1)
        self.output = None
        if args.output_fun == "sigmoid":
            self.output = F.sigmoid
        if args.output_fun == "tanh":
            self.output = F.tanh

    def forward(self, x):
        batch_size = x.size(0)
        # CNN
        c = x.view(-1, 1, self.P, self.m)
        c = F.relu(self.conv1(c))
        c = self.dropout(c)
        c = torch.squeeze(c, 3)
        # RNN
        r = c.permute(2, 0, 1).contiguous()
        _, r = self.GRU1(r)
        r = self.dropout(torch.squeeze(r, 0))
        # skip-rnn

        if self.skip > 0:
            s = c[:, :, int(-self.pt * self.skip) :].contiguous()
            s = s.view(batch_size, self.hidC, self.pt, self.skip)
            s = s.permute(2, 0, 3, 1).contiguous()
            s = s.view(self.pt, batch_size * self.skip, self.hidC)
            _, s = self.GRUskip(s)
            s = s.view(batch_size, self.skip * self.hidS)
            s = self.dropout(s)
            r = torch.cat((r, s), 1)

        res = self.linear1(r)
        # highway
        if self.hw > 0:
            z = x[:, -self.hw :, :]
            z = z.permute(0, 2, 1).contiguous().view(-1, self.hw)
            z = self.highway(z)
            z = z.view(-1, self.m)
            res = res + z

        if self.output:
            res = self.output(res)
        return res


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = ["fixed-window", "python-shape-logic"]
SERIES, WINDOW = 5, 24  # main.py defaults: window 24 * 7, skip 24, kernel 6, highway 24


def build() -> nn.Module:
    torch.manual_seed(0)
    args = SimpleNamespace(cuda=False, window=WINDOW, hidRNN=10, hidCNN=8, hidSkip=4,
                           CNN_kernel=4, skip=4, highway_window=6, dropout=0.2,
                           output_fun="sigmoid")  # fmt: skip
    return Model(args, SimpleNamespace(m=SERIES)).eval()


def _inputs(batch: int) -> tuple:
    # utils.py Data_utility: X of shape (batch, window, m); the window is fixed by the model
    generator = torch.Generator().manual_seed(batch)
    return (torch.randn(batch, WINDOW, SERIES, generator=generator),)


def example_inputs() -> tuple:
    return _inputs(batch=2)


def other_inputs() -> tuple:
    return _inputs(batch=5)
