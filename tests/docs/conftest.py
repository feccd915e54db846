"""The directory the guide's examples run in: what the quick start leaves behind.

Made once per session (one export of a small LSTM) and copied for each page, so a page's
examples can write next to it without disturbing another page's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from rnnx.cli import main


@pytest.fixture(scope="session")
def docs_workspace(tmp_path_factory) -> Path:
    """lstm.pt (the quick start's LSTM 40->64 x2, batch_first), exported/ (its export by
    `rnnx export lstm.pt -o exported/ --batch-first`) and features.npy (1 x 50 steps x 40
    features)."""
    root = tmp_path_factory.mktemp("docs-workspace")
    torch.manual_seed(0)
    layer = torch.nn.LSTM(40, 64, num_layers=2, batch_first=True)
    torch.save(layer.state_dict(), root / "lstm.pt")
    np.save(
        root / "features.npy", np.random.default_rng(0).standard_normal((1, 50, 40), np.float32)
    )
    result = CliRunner().invoke(
        main, ["export", str(root / "lstm.pt"), "-o", str(root / "exported"), "--batch-first"]
    )
    assert result.exit_code == 0, result.output
    return root
