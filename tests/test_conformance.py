"""The conformance table: every layer kind × the layouts that change the graph × every runtime
and precision rnnx offers on this machine, each verified against eager PyTorch through
`rnnx.verify` with that precision's tolerance class (rnnx/compare.py).

The runtimes and precisions come from the registry (rnnx/formats.py), so a new runtime is in
the table without editing it. Projected LSTMs are also exported in onnx-folded, their second
lowering. A precision the CPU lacks is skipped, with the reason; the
refusal itself is tested in tests/runtimes/test_openvino.py. A runtime whose tools are missing
(the web runtime's Chromium, the npm packages) is skipped with the line saying how to install
them. The web and node rows, the whole table for each, run in one Chromium and one Node worker
shared by the session (rnnx/runtimes/js_host.py): about 20 s for their 32 rows on 2 cores.
Where ExecuTorch is installed, every layer is also exported in pte, its dynamic-time variant
(the one every layer has; fixed chunks are tested in tests/runtimes/test_executorch.py).
"""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest
import torch
from torch import nn

import rnnx
from rnnx.core.errors import RnnxError
from rnnx.core.manifest import read_manifest
from rnnx.exporter.pte_export import DEFAULT_MAX_TIME
from rnnx.formats import FORMATS, RUNTIMES, runtime_missing
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
# pte is asked for by name (its lowering takes seconds a layer); without ExecuTorch the
# executorch rows are skipped with the runtime's hint
PTE = ("pte",) if importlib.util.find_spec("executorch") else ()
DEFAULT_FORMATS = (*(name for name, f in FORMATS.items() if f.default), *PTE)
# layer -> (kind, constructor options, the formats it is exported in)
LAYERS = {
    **{f"{kind}-{variant}": (kind, options, DEFAULT_FORMATS) for kind in KINDS
       for variant, options in VARIANTS.items()},
    **{name: ("lstm", options, (*DEFAULT_FORMATS, "onnx-folded"))
       for name, options in PROJECTED.items()},
}  # fmt: skip


def _label(runtime: str, format: str, precision: str) -> str:
    """The label rnnx.verify gives a runtime's result."""
    return f"{runtime}:{format}" + (f"[{precision}]" if precision != "f32" else "")


def _table() -> list:
    """(layer, runtime, format, precision): every layer in every Python runtime that reads one
    of its formats, at each precision the runtime offers."""
    rows = []
    for layer, (_, _, formats) in LAYERS.items():
        for runtime in RUNTIMES.values():
            if runtime.opener is None:
                continue
            skip = runtime_missing(runtime)
            for format in (f for f in runtime.formats if f in formats):
                # a precision this CPU lacks is a row too: its refusal is what this class shows
                for precision in ("f32", *runtime.precisions):
                    rows.append(pytest.param(
                        layer, runtime.name, format, precision,
                        id=f"{layer}-{_label(runtime.name, format, precision)}",
                        marks=[pytest.mark.skip(reason=skip)] if skip else [],
                    ))  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """Each layer exported once, in its formats (unverified: the table verifies)."""
    root = tmp_path_factory.mktemp("conformance")
    torch.manual_seed(0)
    # a maximum given: the layers that stream take the dynamic-time pte too
    options = ExportOptions(verify=False, max_time=DEFAULT_MAX_TIME)
    return {name: export(KINDS[kind](**kw).eval(), root / name,
                         dataclasses.replace(options, formats=formats)).output_dir
            for name, (kind, kw, formats) in LAYERS.items()}  # fmt: skip


@pytest.mark.parametrize(("layer", "runtime", "format", "precision"), _table())
def test_runtime_matches_eager(exported, layer, runtime, format, precision) -> None:
    options = {} if precision == "f32" else {"precision": precision}
    if precision not in ("f32", *RUNTIMES[runtime].precisions_here()):
        with pytest.raises(RnnxError, match=f"precision '{precision}' is not supported by this "
                           r"CPU in \w+; it supports f32"):  # fmt: skip
            rnnx.verify(exported[layer], runtime=runtime, format=format, **options)
        return
    report = rnnx.verify(exported[layer], runtime=runtime, format=format, **options)
    assert report.passed, report.first_failure()
    label = _label(runtime, format, precision)
    summary = report.summary()
    # every case ran, whole sequences and (where the layer streams: not bidirectional) in
    # chunks: a runtime that returns nothing or the wrong shape fails above
    assert summary[label]["cases"] > 0
    if read_manifest(exported[layer]).signature.streamable:
        assert summary[f"{label} streamed"]["cases"] > 0
