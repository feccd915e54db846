"""World Models (Ha & Schmidhuber) as ctallec/world-models writes it: the MDRNN world model over a
sequence: (action, latent) pairs through an LSTM into a Gaussian mixture over the next latent,
plus reward and terminal predictions.

Source: https://github.com/ctallec/world-models, models/mdrnn.py
Commit: 5d4261e5406fb4724e3617ab4d94bde909374a26
License: MIT (tests/corpus/LICENSES/world-models.txt)
Copyright (c) 2018 Corentin Tallec
Changed: kept _MDRNNBase and MDRNN (MDRNNCell and the training loss gmm_loss, with its Normal
import, are in the same file upstream and dropped here); formatting by ruff and lint
directives. The classes are as published. build(), example_inputs() and other_inputs() below
are glue for the rnnx corpus test.
"""
# ruff: noqa: UP008

import torch
import torch.nn as nn
import torch.nn.functional as f


class _MDRNNBase(nn.Module):
    def __init__(self, latents, actions, hiddens, gaussians):
        super().__init__()
        self.latents = latents
        self.actions = actions
        self.hiddens = hiddens
        self.gaussians = gaussians

        self.gmm_linear = nn.Linear(hiddens, (2 * latents + 1) * gaussians + 2)

    def forward(self, *inputs):
        pass


class MDRNN(_MDRNNBase):
    """MDRNN model for multi steps forward"""

    def __init__(self, latents, actions, hiddens, gaussians):
        super().__init__(latents, actions, hiddens, gaussians)
        self.rnn = nn.LSTM(latents + actions, hiddens)

    def forward(self, actions, latents):  # pylint: disable=arguments-differ
        """MULTI STEPS forward.

        :args actions: (SEQ_LEN, BSIZE, ASIZE) torch tensor
        :args latents: (SEQ_LEN, BSIZE, LSIZE) torch tensor

        :returns: mu_nlat, sig_nlat, pi_nlat, rs, ds, parameters of the GMM
        prediction for the next latent, gaussian prediction of the reward and
        logit prediction of terminality.
            - mu_nlat: (SEQ_LEN, BSIZE, N_GAUSS, LSIZE) torch tensor
            - sigma_nlat: (SEQ_LEN, BSIZE, N_GAUSS, LSIZE) torch tensor
            - logpi_nlat: (SEQ_LEN, BSIZE, N_GAUSS) torch tensor
            - rs: (SEQ_LEN, BSIZE) torch tensor
            - ds: (SEQ_LEN, BSIZE) torch tensor
        """
        seq_len, bs = actions.size(0), actions.size(1)

        ins = torch.cat([actions, latents], dim=-1)
        outs, _ = self.rnn(ins)
        gmm_outs = self.gmm_linear(outs)

        stride = self.gaussians * self.latents

        mus = gmm_outs[:, :, :stride]
        mus = mus.view(seq_len, bs, self.gaussians, self.latents)

        sigmas = gmm_outs[:, :, stride : 2 * stride]
        sigmas = sigmas.view(seq_len, bs, self.gaussians, self.latents)
        sigmas = torch.exp(sigmas)

        pi = gmm_outs[:, :, 2 * stride : 2 * stride + self.gaussians]
        pi = pi.view(seq_len, bs, self.gaussians)
        logpi = f.log_softmax(pi, dim=-1)

        rs = gmm_outs[:, :, -2]

        ds = gmm_outs[:, :, -1]

        return mus, sigmas, logpi, rs, ds


# --- rnnx corpus glue -------------------------------------------------------------------------

CONSTRUCTS = ["python-shape-logic"]
LATENTS, ACTIONS, HIDDENS, GAUSSIANS = 8, 3, 16, 5  # trainmdrnn.py: 32, 3, 256, 5


def build() -> nn.Module:
    torch.manual_seed(0)
    return MDRNN(LATENTS, ACTIONS, HIDDENS, GAUSSIANS).eval()


def _inputs(batch: int, steps: int) -> tuple:
    # trainmdrnn.py: action and latent_obs transposed to (SEQ_LEN, BSIZE, *)
    generator = torch.Generator().manual_seed(batch * 1000 + steps)
    actions = torch.randn(steps, batch, ACTIONS, generator=generator)
    latents = torch.randn(steps, batch, LATENTS, generator=generator)
    return actions, latents


def example_inputs() -> tuple:
    return _inputs(batch=2, steps=6)


def other_inputs() -> tuple:
    return _inputs(batch=3, steps=13)
