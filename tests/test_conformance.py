"""The conformance table: every layer kind × the layouts that change the graph × every runtime
and precision rnnx offers on this machine, each verified against eager PyTorch through
`rnnx.verify` with that precision's tolerance class (rnnx/compare.py).

The runtimes and precisions come from the registry (rnnx/formats.py), so a new runtime is in
the table without editing it. A precision the CPU lacks is skipped, with the reason; the
refusal itself is tested in tests/runtimes/test_openvino.py.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnx
from rnnx.core.manifest import read_manifest
from rnnx.formats import FORMATS, RUNTIMES, runtime_available
from rnnx.pipeline import ExportOptions, export

# Small sizes (input 3, hidden 5, proj 2): the whole table runs in about a minute.
KINDS = {
    "rnn_tanh": lambda **kw: nn.RNN(3, 5, nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: nn.RNN(3, 5, nonlinearity="relu", **kw),
    "lstm": lambda **kw: nn.LSTM(3, 5, **kw),
    "gru": lambda **kw: nn.GRU(3, 5, **kw),
}
VARIANTS = {
    "bidirectional": dict(bidirectional=True),
    "batch_first": dict(batch_first=True),
    "3_layers": dict(num_layers=3),
}
PROJECTED = {  # proj_size alone, and with every other variant at once
    "lstm-proj": dict(proj_size=2),
    "lstm-proj-bidirectional-batch_first-2_layers": dict(
        proj_size=2, bidirectional=True, batch_first=True, num_layers=2
    ),
}
LAYERS = {
    **{f"{kind}-{variant}": (kind, options) for kind in KINDS for variant, options in
       VARIANTS.items()},
    **{name: ("lstm", options) for name, options in PROJECTED.items()},
}  # fmt: skip


def _targets() -> list:
    """(runtime, format, precision) for every Python runtime that reads a default format."""
    targets = []
    for runtime in RUNTIMES.values():
        formats = [f for f in runtime.formats if FORMATS[f].default]
        if runtime.opener is None or not formats:
            continue
        reason = None if runtime_available(runtime) else f"{runtime.name} is not installed"
        here = runtime.precisions_here() if reason is None else []
        for format in formats:
            for precision in ("f32", *runtime.precisions):
                skip = reason or (
                    None if precision in ("f32", *here) else f"this CPU has no {precision}"
                )
                marks = [pytest.mark.skip(reason=skip)] if skip else []
                name = f"{runtime.name}:{format}" + (f"[{precision}]" if precision != "f32" else "")
                targets.append(pytest.param(runtime.name, format, precision, id=name, marks=marks))
    return targets


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """Each layer exported once, in every default format (unverified: the table verifies)."""
    root = tmp_path_factory.mktemp("conformance")
    torch.manual_seed(0)
    formats = tuple(name for name, f in FORMATS.items() if f.default)
    options = ExportOptions(formats=formats, verify=False)
    return {name: export(KINDS[kind](**kw).eval(), root / name, options).output_dir
            for name, (kind, kw) in LAYERS.items()}  # fmt: skip


@pytest.mark.parametrize(("runtime", "format", "precision"), _targets())
@pytest.mark.parametrize("layer", LAYERS)
def test_runtime_matches_eager(exported, layer, runtime, format, precision) -> None:
    options = {} if precision == "f32" else {"precision": precision}
    report = rnnx.verify(exported[layer], runtime=runtime, format=format, **options)
    assert report.passed, report.first_failure()
    label = f"{runtime}:{format}" + (f"[{precision}]" if precision != "f32" else "")
    summary = report.summary()
    # every case ran, whole sequences and (where the layer streams: not bidirectional) in
    # chunks: a runtime that returns nothing or the wrong shape fails above
    assert summary[label]["cases"] > 0
    if read_manifest(exported[layer]).signature.streamable:
        assert summary[f"{label} streamed"]["cases"] > 0
