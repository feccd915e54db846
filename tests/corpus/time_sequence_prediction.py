"""pytorch/examples time_sequence_prediction: two LSTMCells stepped in a Python loop over the
input's time steps (`input.split(1, dim=1)`), then `future` steps fed their own output; float64
throughout (`seq.double()`, states made with dtype=torch.double).

Source: https://github.com/pytorch/examples, time_sequence_prediction/train.py (Sequence)
Commit: e27e2585a5b6a557e3512c3f5bd742ff4850f364
License: BSD-3-Clause (tests/corpus/LICENSES/pytorch-examples.txt)
Copyright (c) 2017, Pytorch contributors
Changed: only the Sequence class is kept (the training script, matplotlib and argparse code
dropped); formatting by ruff and lint directives. The class is as published. build(),
example_inputs() and other_inputs() below are glue for the rnnx corpus test.
"""
# ruff: noqa: UP008, B007

import torch
import torch.nn as nn


class Sequence(nn.Module):
    def __init__(self):
        super(Sequence, self).__init__()
        self.lstm1 = nn.LSTMCell(1, 51)
        self.lstm2 = nn.LSTMCell(51, 51)
        self.linear = nn.Linear(51, 1)

    def forward(self, input, future=0):
        outputs = []
        h_t = torch.zeros(input.size(0), 51, dtype=torch.double)
        c_t = torch.zeros(input.size(0), 51, dtype=torch.double)
        h_t2 = torch.zeros(input.size(0), 51, dtype=torch.double)
        c_t2 = torch.zeros(input.size(0), 51, dtype=torch.double)

        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for i in range(future):  # if we should predict the future
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        outputs = torch.cat(outputs, dim=1)
        return outputs


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = ["python-time-loop", "float64"]


def build() -> nn.Module:
    torch.manual_seed(0)
    return Sequence().double().eval()  # train.py: seq.double()


def _inputs(batch: int, steps: int) -> tuple:
    # generate_sine_wave.py: sine waves, (N, L) float64
    generator = torch.Generator().manual_seed(batch * 1000 + steps)
    phase = torch.randint(-80, 80, (batch, 1), generator=generator)
    return (torch.sin((torch.arange(steps)[None, :] + phase) / 20.0).double(),)


def example_inputs() -> tuple:
    return _inputs(batch=2, steps=12)


def other_inputs() -> tuple:
    return _inputs(batch=3, steps=19)
