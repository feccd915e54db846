"""Measure the corpus: rnnx, the legacy and the dynamo exporter side by side; regenerate the table.

    python tests/corpus/measure.py            # print the table
    python tests/corpus/measure.py --write    # and replace it in tests/corpus/README.md

Each model is exported as a user of each exporter would, and counts as exported only when the
artifact matches eager PyTorch (atol 1e-4, rtol 1e-3) at the file's other_inputs(), another
batch size and length:

* rnnx: `rnnx.export(model, dir, example_inputs=...)`, zero configuration; its own
  verification must pass too. A refusal is quoted (its first 110 characters).
* legacy: `torch.onnx.export(..., dynamo=False)`, the TorchScript-based exporter, with
  `dynamic_axes` for the axes rnnx finds (the names a user would give it by hand); without
  them every axis is fixed.
* dynamo: `torch.onnx.export(..., dynamo=True)` with `dynamic_shapes` of `Dim.DYNAMIC` on the
  same axes.

Not part of the test suite (a few minutes); tests/corpus/test_corpus.py checks rnnx's rows.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent)]  # rnnx, and `corpus` as a package

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

import rnnx  # noqa: E402
from corpus.test_corpus import CORPUS, _flatten  # noqa: E402
from rnnx.exporter.model_io import flatten_inputs  # noqa: E402
from rnnx.exporter.onnx_export import _quiet  # noqa: E402  (what rnnx itself hides)
from rnnx.exporter.plan import plan_export  # noqa: E402

ATOL, RTOL = 1e-4, 1e-3
BEGIN, END = "<!-- measured: begin -->", "<!-- measured: end -->"


def _matches(run: Any, corpus: Any) -> str:
    """`yes` when `run(flat inputs)` gives eager's outputs at other_inputs(), else why not (a
    fresh model: an exporter may have changed the one it traced)."""
    other = corpus.other_inputs()
    with torch.inference_mode():
        expected = [t.numpy() for t in _flatten(corpus.build()(*other))]
    try:
        got = run([t.numpy() for t in _flatten(other)])
    except Exception as error:  # the artifact fails at other shapes
        return "fails at new shapes: " + _short(error)
    if len(got) != len(expected) or any(g.shape != e.shape for g, e in zip(got, expected)):
        return "wrong shapes at new shapes"
    if not all(np.allclose(g, e, atol=ATOL, rtol=RTOL) for g, e in zip(got, expected)):
        return "wrong values at new shapes"
    return "yes"


def _short(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if "## Exception summary" in lines:
        lines = lines[lines.index("## Exception summary") + 1 :]
    text = (lines or [type(error).__name__])[0].replace("|", "/").replace("`", "'")
    return f"{type(error).__name__}: {text}"[:110]


def _onnx_runner(path: Path) -> Any:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(flat: list[np.ndarray]) -> list[np.ndarray]:
        if len(names) != len(flat):
            raise ValueError(f"the graph reads {len(names)} inputs, the model takes {len(flat)}")
        return session.run(None, dict(zip(names, flat)))

    return run


def _axes(model: torch.nn.Module, example: tuple) -> list[dict[int, str]]:
    """Per flat input, its dynamic axes as rnnx finds them (none when rnnx cannot tell)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan = plan_export(model, example)
        return [{a: d for a, d in enumerate(t.dims) if isinstance(d, str)} for t in plan.inputs]
    except Exception:
        return [{} for _ in flatten_inputs(model, example)[0]]


def measure_rnnx(corpus: Any, directory: Path) -> str:
    model = corpus.build()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = rnnx.export(model, directory, example_inputs=corpus.example_inputs())
    except rnnx.RnnxError as error:
        return "refused: " + str(error)[:110].replace("|", "/").replace("`", "'")
    except Exception as error:  # a crash: worse than a refusal
        return "crashed: " + _short(error)
    if result.report is None or not result.report.passed:
        return "not verified"
    if "onnx" not in result.manifest.artifacts:
        return "no onnx artifact"
    route = (result.manifest.notes.get("onnx") or {}).get("route", "torch.export")
    verdict = _matches(_onnx_runner(directory / "model.onnx"), corpus)
    suffix = "" if route == "torch.export" else f" (route {route})"
    return ("exports" if verdict == "yes" else verdict) + suffix


def _flat_module(model: torch.nn.Module, example: tuple) -> tuple[torch.nn.Module, list]:
    from rnnx.exporter.model_io import FlatIO

    leaves, structure = flatten_inputs(model, example)
    return FlatIO(model, structure), [leaf.tensor for leaf in leaves]


class _Constants(torch.nn.Module):
    """The model with its Python-number arguments (teacher_forcing_ratio=0) bound: what both
    torch.onnx exporters do with a non-tensor argument, a constant in the graph."""

    def __init__(self, model: torch.nn.Module, example: tuple) -> None:
        super().__init__()
        self.model = model
        self.constants = {i: v for i, v in enumerate(example) if isinstance(v, (bool, int, float))}

    def forward(self, *tensors: Any) -> Any:
        values = iter(tensors)
        count = len(tensors) + len(self.constants)
        return self.model(*(self.constants[i] if i in self.constants else next(values)
                            for i in range(count)))  # fmt: skip


def _stock_inputs(corpus: Any) -> tuple[torch.nn.Module, tuple]:
    """The model and example as a stock exporter takes them (Python numbers bound)."""
    model, example = corpus.build(), tuple(corpus.example_inputs())
    if not any(isinstance(v, (bool, int, float)) for v in example):
        return model, example
    bound = _Constants(model, example)
    return bound, tuple(v for i, v in enumerate(example) if i not in bound.constants)


def measure_legacy(corpus: Any, directory: Path) -> str:
    model, example = _stock_inputs(corpus)
    flat_model, flat = _flat_module(model, example)
    names = [f"input_{i}" for i in range(len(flat))]
    dynamic = {n: axes for n, axes in zip(names, _axes(model, example)) if axes}
    directory.mkdir(parents=True)
    path = directory / "legacy.onnx"
    try:
        with _quiet():
            torch.onnx.export(flat_model, tuple(flat), str(path), dynamo=False,
                              input_names=names, dynamic_axes=dynamic)  # fmt: skip
    except Exception as error:
        return "fails: " + _short(error)
    verdict = _matches(_onnx_runner(path), corpus)
    return "exports" if verdict == "yes" else verdict


def measure_dynamo(corpus: Any, directory: Path) -> str:
    model, example = _stock_inputs(corpus)
    flat_model, flat = _flat_module(model, example)
    dim = torch.export.Dim.DYNAMIC
    shapes = (tuple({a: dim for a in axes} for axes in _axes(model, example)),)
    directory.mkdir(parents=True)
    path = directory / "dynamo.onnx"
    try:
        with _quiet():
            torch.onnx.export(flat_model, tuple(flat), str(path), dynamo=True,
                              dynamic_shapes=shapes)  # fmt: skip
    except Exception as error:
        return "fails: " + _short(error)
    verdict = _matches(_onnx_runner(path), corpus)
    return "exports" if verdict == "yes" else verdict


def table() -> str:
    rows = ["| model | rnnx | legacy (`dynamo=False`) | dynamo (`dynamo=True`) |",
            "|---|---|---|---|"]  # fmt: skip
    counts = {"rnnx": 0, "legacy": 0, "dynamo": 0}
    for row in CORPUS:
        corpus = importlib.import_module(f"corpus.{row.name}")
        cells = []
        for name, measure in (("rnnx", measure_rnnx), ("legacy", measure_legacy),
                              ("dynamo", measure_dynamo)):  # fmt: skip
            with tempfile.TemporaryDirectory() as scratch:
                verdict = measure(corpus, Path(scratch) / "out")
            counts[name] += verdict.startswith("exports")
            cells.append(verdict)
        rows.append(f"| `{row.name}` | " + " | ".join(cells) + " |")
        print(rows[-1], file=sys.stderr, flush=True)
    total = len(CORPUS)
    cells = " | ".join(f"**{counts[k]} of {total}**" for k in ("rnnx", "legacy", "dynamo"))
    rows.append(f"| **exported and verified** | {cells} |")
    versions = f"torch {torch.__version__}, onnxruntime {ort.__version__}"
    return "\n".join(rows) + f"\n\nMeasured with {versions} by `tests/corpus/measure.py`.\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the README's table")
    args = parser.parse_args()
    text = table()
    print(text)
    if args.write:
        readme = HERE / "README.md"
        content = readme.read_text()
        if BEGIN not in content:
            content = content.rstrip("\n") + f"\n\n## Side by side\n\n{BEGIN}\n{END}\n"
        head, rest = content.split(BEGIN, 1)
        readme.write_text(f"{head}{BEGIN}\n{text}{END}{rest.split(END, 1)[1]}")


if __name__ == "__main__":
    main()
