"""`rnnx doctor`: each hazard class found on a minimal module, with how to fix it."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import rnnx
from rnnx.cli import main
from rnnx.core.errors import RnnxWarning
from rnnx.doctor import doctor
from rnnx.models.zoo import BadBiLSTMRegressor, BiLSTMRegressor


class _Base(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(3, 4)

    def example_inputs(self):
        return (torch.randn(5, 2, 3),)


class RandomState(_Base):
    def forward(self, x):
        return self.gru(x, torch.rand(1, x.shape[1], 4))[0]


class AlwaysDropout(_Base):
    def forward(self, x):
        return nn.functional.dropout(self.gru(x)[0], p=0.2, training=True)


class Branchy(_Base):
    def forward(self, x):
        y = self.gru(x)[0]
        if y.mean() > 0:  # a tensor value decides the branch
            return y * 2
        return y


class FixedBatch(_Base):
    def forward(self, x):
        return self.gru(x)[0].reshape(x.shape[0], 2 * 4)  # batch 2 baked in


class FixedTime(_Base):
    def forward(self, x):
        return self.gru(x)[0].permute(1, 0, 2).reshape(x.shape[1], 5 * 4)  # time 5 baked in


@pytest.mark.parametrize(
    "module, hazard",
    [
        (RandomState, "random"),
        (AlwaysDropout, "train-mode"),
        (Branchy, "control-flow"),
        (FixedBatch, "frozen-batch"),
        (FixedTime, "frozen-time"),
    ],
)
def test_each_hazard_is_found_with_a_fix(module, hazard) -> None:
    findings = doctor(module().eval())
    assert [f.hazard for f in findings] == [hazard]
    assert findings[0].fix and findings[0].message


def test_training_mode_and_clean_models() -> None:
    assert [f.hazard for f in doctor(nn.LSTM(3, 4, num_layers=2, dropout=0.2))] == ["train-mode"]
    assert doctor(nn.LSTM(3, 4).eval()) == []


def test_the_tutorial_regressor_is_flagged_and_its_fix_passes() -> None:
    assert {f.hazard for f in doctor(BadBiLSTMRegressor().eval())} == {"random", "frozen-batch"}
    assert doctor(BiLSTMRegressor().eval()) == []


def test_doctor_command(tmp_path) -> None:
    checkpoint = tmp_path / "regressor.pt"
    torch.save(BiLSTMRegressor().state_dict(), checkpoint)
    bad = CliRunner().invoke(
        main, ["doctor", str(checkpoint), "--model", "rnnx.models.zoo:BadBiLSTMRegressor"]
    )
    assert bad.exit_code == 1
    assert "random" in bad.output and "frozen-batch" in bad.output and "fix:" in bad.output
    assert bad.stderr.strip().splitlines() == [
        f"rnnx: error: 2 export hazard(s) found in {checkpoint}"
    ]
    good = CliRunner().invoke(
        main, ["doctor", str(checkpoint), "--model", "rnnx.models.zoo:BiLSTMRegressor"]
    )
    assert good.exit_code == 0 and "no export hazards" in good.output


def test_export_runs_doctor_as_a_preflight(tmp_path) -> None:
    model = nn.GRU(3, 4, num_layers=2, dropout=0.5)  # left in training mode
    with pytest.warns(RnnxWarning, match="training mode"):
        result = rnnx.export(model, tmp_path / "gru")
    assert [f["hazard"] for f in result.manifest.doctor] == ["train-mode"]
    assert result.report.passed
