"""World Models (Ha & Schmidhuber) as ctallec/world-models writes it: ONE STEP of the MDRNN world
model (an LSTMCell), as the simulated environment and the controller call it: the (h, c)
state is passed in and returned last.

Source: https://github.com/ctallec/world-models, models/mdrnn.py
Commit: 5d4261e5406fb4724e3617ab4d94bde909374a26
License: MIT (tests/corpus/LICENSES/world-models.txt)
Copyright (c) 2018 Corentin Tallec
Changed: kept MDRNNCell; its base _MDRNNBase, from the same upstream file, is the one vendored
in mdrnn.py and imported from there (the training loss gmm_loss, with its Normal import, is
dropped); formatting by ruff and lint
directives. The classes are as published. build(), example_inputs() and other_inputs() below
are glue for the rnnx corpus test.
"""
# ruff: noqa: UP008

import torch
import torch.nn as nn
import torch.nn.functional as f

from .mdrnn import _MDRNNBase


class MDRNNCell(_MDRNNBase):
    """MDRNN model for one step forward"""

    def __init__(self, latents, actions, hiddens, gaussians):
        super().__init__(latents, actions, hiddens, gaussians)
        self.rnn = nn.LSTMCell(latents + actions, hiddens)

    def forward(self, action, latent, hidden):  # pylint: disable=arguments-differ
        """ONE STEP forward.

        :args actions: (BSIZE, ASIZE) torch tensor
        :args latents: (BSIZE, LSIZE) torch tensor
        :args hidden: (BSIZE, RSIZE) torch tensor

        :returns: mu_nlat, sig_nlat, pi_nlat, r, d, next_hidden, parameters of
        the GMM prediction for the next latent, gaussian prediction of the
        reward, logit prediction of terminality and next hidden state.
            - mu_nlat: (BSIZE, N_GAUSS, LSIZE) torch tensor
            - sigma_nlat: (BSIZE, N_GAUSS, LSIZE) torch tensor
            - logpi_nlat: (BSIZE, N_GAUSS) torch tensor
            - rs: (BSIZE) torch tensor
            - ds: (BSIZE) torch tensor
        """
        in_al = torch.cat([action, latent], dim=1)

        next_hidden = self.rnn(in_al, hidden)
        out_rnn = next_hidden[0]

        out_full = self.gmm_linear(out_rnn)

        stride = self.gaussians * self.latents

        mus = out_full[:, :stride]
        mus = mus.view(-1, self.gaussians, self.latents)

        sigmas = out_full[:, stride : 2 * stride]
        sigmas = sigmas.view(-1, self.gaussians, self.latents)
        sigmas = torch.exp(sigmas)

        pi = out_full[:, 2 * stride : 2 * stride + self.gaussians]
        pi = pi.view(-1, self.gaussians)
        logpi = f.log_softmax(pi, dim=-2)

        r = out_full[:, -2]

        d = out_full[:, -1]

        return mus, sigmas, logpi, r, d, next_hidden


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = ["step-model", "tuple-state"]
# a step model: streamed one call per step with (h, c) carried (the signature's state pairs);
# the corpus test's chunked check needs a time axis to cut
STREAMABLE = False
LATENTS, ACTIONS, HIDDENS, GAUSSIANS = 8, 3, 16, 5  # trainmdrnn.py: 32, 3, 256, 5


def build() -> nn.Module:
    torch.manual_seed(0)
    return MDRNNCell(LATENTS, ACTIONS, HIDDENS, GAUSSIANS).eval()


def _inputs(batch: int) -> tuple:
    # envs/simulated_carracing.py / traincontroller.py: one action, one latent, the (h, c) state
    generator = torch.Generator().manual_seed(batch)
    action = torch.randn(batch, ACTIONS, generator=generator)
    latent = torch.randn(batch, LATENTS, generator=generator)
    hidden = tuple(torch.randn(batch, HIDDENS, generator=generator) for _ in range(2))
    return action, latent, hidden


def example_inputs() -> tuple:
    return _inputs(batch=2)


def other_inputs() -> tuple:
    return _inputs(batch=5)
