"""Published recurrent models, exported the way a user would: zero configuration.

Each row of CORPUS is one vendored model file (tests/corpus/<name>.py: the model's classes as
published, plus build(), example_inputs(), other_inputs()). A row expects either

* "exports": `rnnx.export(model, dir, example_inputs=...)` with no ModelIO passes verification,
  the ONNX model re-run in onnxruntime at another batch size and length (the file's
  other_inputs(), fed by the graph's input names in order, nested states flattened) matches
  the eager model, and a stateful, streamable model streamed in chunks matches the eager
  model on the whole sequence; or
* "refused": export raises an RnnxError whose one-line message matches the row's pattern,
  which names the construct and the fix.

Rows that rnnx cannot handle yet are strict xfails whose reason quotes today's error, so the
suite stays green and a row flips (XPASS fails the run) as soon as the exporter learns its
construct: then delete the mark.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import rnnx

HERE = Path(__file__).parent
KNOWN_CONSTRUCTS = {
    "tuple-state",
    "list-state",
    "subclass",
    "conv-front-end",
    "raw-audio",
    "image-width-time",
    "subsampling",
    "derived-output-axis",
    "packed-no-total-length",
    "host-lengths",
    "python-shape-logic",
    "receptive-field",
    "lengths-gather",
    "final-state-head",
    "fixed-window",
    "step-model",
    "fixed-batch",
    "python-time-loop",
    "float64",
    "packed-unsorted",
    "greedy-feedback",
    "tensor-assert",
    "scalar-argument",
}
ATOL, RTOL = 1e-4, 1e-3


@dataclasses.dataclass(frozen=True)
class Row:
    name: str  # tests/corpus/<name>.py
    expect: str  # "exports" or "refused"
    refusal: str | None = None  # regex the one-line RnnxError message must match
    today: str | None = None  # why the row fails today (construct + rnnx's exact error): xfail


CORPUS = [
    Row(
        "word_language_model",
        "exports",
    ),
    Row(
        "crnn",
        "exports",
    ),
    Row(
        "tacotron2_encoder",
        "exports",
    ),
    Row(
        "weight_drop_lstm",
        "exports",
        # _weight_drop's forward assigns the dropped weights to the layer's parameters as it
        # runs: torch.export cannot trace that (rnnx's own route names the line and the fix);
        # the TorchScript-based exporter traces it, and its graph verifies (the capture routes,
        # exporter/routes.py). torch.jit.trace of the torchscript format fails: left out.
    ),
    Row(
        "rnnoise",
        "exports",
    ),
    Row(
        "deepspeech2",
        "refused",
        # MaskConv loops over the batch in Python with lengths[i].item(): a batch size and
        # lengths frozen into the graph. rnnx should say so and give the fix.
        refusal=r"(?i)(\.item\(\)|python loop).*(length|batch).*(tensor op|arange|mask)",
    ),
    Row(
        "darts_block_rnn",
        "exports",
    ),
    Row(
        "gru4rec",
        "exports",
    ),
    Row(
        "speaker_encoder",
        "exports",
    ),
    Row(
        "lstnet",
        "exports",
    ),
    Row(
        "mdrnn",
        "exports",
    ),
    Row(
        "mdrnn_cell",
        "exports",
    ),
    Row(
        "time_sequence_prediction",
        "refused",
        # float64 parameters and states made float64 in forward: rnnx exports float32 models;
        # the refusal names the model class's line and the fix.
        refusal=r"time_sequence_prediction\.py:\d+: parameter \S+ is torch\.float64.*float32",
    ),
    Row(
        "attn_decoder_step",
        "exports",
        # batch 1 is built into forward (.view(1, 1, -1)): exported with every axis fixed at the
        # example's shapes, as the stock exporters write it, with a warning naming the line
        # that fails at another batch.
    ),
    Row(
        "sentiment_lstm",
        "exports",
    ),
    Row(
        "seq2seq_attention",
        "refused",
        # model(src, trg, 0): teacher_forcing_ratio is a required Python number, bound at 0 as
        # both stock exporters bind it (a warning says so). Past it, the decoder's
        # `assert (output == hidden).all()` reads a tensor value, and the loop
        # `for t in range(1, trg_length)` unrolls the decoder to the example's target length
        # (the legacy exporter's graph gives wrong values at another length): refused at the
        # model's line with the fix.
        refusal=r"seq2seq_attention\.py:\d+: .*fix",
    ),
]


def _params() -> list[Any]:
    params = []
    for row in CORPUS:
        marks = [pytest.mark.xfail(strict=True, reason=row.today)] if row.today else []
        params.append(pytest.param(row, id=row.name, marks=marks))
    return params


def _module(name: str) -> Any:
    return importlib.import_module(f".{name}", __package__)


def _flatten(value: Any) -> list[torch.Tensor]:
    """Nested tuples/lists of tensors in order; None (an absent optional argument) and Python
    numbers (a constant argument, such as teacher_forcing_ratio=0) skipped: not graph inputs."""
    if value is None or isinstance(value, (bool, int, float)):
        return []
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _flatten(item)]
    raise TypeError(f"unexpected {type(value).__name__} in a model's inputs or outputs")


def _export(model: torch.nn.Module, directory: Path, example: tuple) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rnnx doctor findings are warnings; not under test
        return rnnx.export(model, directory, example_inputs=example)


@pytest.mark.parametrize("row", _params())
def test_published_model(row: Row, tmp_path: Path) -> None:
    corpus = _module(row.name)
    model = corpus.build()
    directory = tmp_path / row.name

    if row.expect == "refused":
        with pytest.raises(rnnx.RnnxError) as refused:
            _export(model, directory, corpus.example_inputs())
        message = str(refused.value)
        assert "\n" not in message.strip(), f"not one line: {message!r}"
        assert re.search(row.refusal, message), f"{message!r} does not match {row.refusal!r}"
        assert not directory.exists()
        return

    result = _export(model, directory, corpus.example_inputs())
    assert result.report is not None and result.report.passed

    session = rnnx.load(directory, "onnxruntime")
    signature = session.signature
    other = corpus.other_inputs()
    flat = [t.numpy() for t in _flatten(other)]
    assert len(flat) == len(signature.input_names), (signature.input_names, len(flat))
    feeds = dict(zip(signature.input_names, flat))
    with torch.inference_mode():
        expected = [t.numpy() for t in _flatten(model(*other))]
    assert len(expected) == len(signature.output_names)
    outputs = session.run(feeds)
    for name, want in zip(signature.output_names, expected):
        np.testing.assert_allclose(outputs[name], want, atol=ATOL, rtol=RTOL, err_msg=name)

    if getattr(corpus, "STREAMABLE", False):
        _check_stream(corpus, session, feeds, dict(zip(signature.output_names, expected)))


def _check_stream(corpus: Any, session: Any, feeds: dict, expected: dict) -> None:
    """Chunks of 1, 3, then the rest, from the given states: equal to one whole-sequence call."""
    signature = session.signature
    assert signature.streamable and signature.state_pairs
    axes = corpus.STREAM_TIME_AXES
    data = {spec.name: feeds[spec.name] for spec in signature.data_inputs}
    time = next(iter(data.values())).shape[axes["inputs"]]
    batch = next(iter(feeds[name] for name in signature.state_inputs)).shape[1]
    stream = session.stream(batch=batch)
    stream.set_state({name: feeds[name] for name in signature.state_inputs})
    chunks: dict[str, list[np.ndarray]] = {}
    for start, stop in _spans(time):
        step = {
            name: np.take(array, range(start, stop), axis=axes["inputs"])
            for name, array in data.items()
        }
        for name, value in stream.step(step).items():
            chunks.setdefault(name, []).append(value)
    state_outputs = {output for output, _ in signature.state_pairs}
    data_outputs = [name for name in signature.output_names if name not in state_outputs]
    assert sorted(chunks) == sorted(data_outputs)
    for name in data_outputs:
        streamed = np.concatenate(chunks[name], axis=axes["outputs"])
        np.testing.assert_allclose(streamed, expected[name], atol=ATOL, rtol=RTOL, err_msg=name)
    for output, state_input in signature.state_pairs:
        np.testing.assert_allclose(stream.state[state_input], expected[output], atol=ATOL,
                                   rtol=RTOL, err_msg=output)  # fmt: skip


def _spans(time: int) -> list[tuple[int, int]]:
    bounds = [0, *(b for b in (1, 4) if b < time), time]
    return list(zip(bounds[:-1], bounds[1:]))


# The corpus itself: these hold today and keep the vendored files honest.


@pytest.mark.parametrize("row", CORPUS, ids=[row.name for row in CORPUS])
def test_corpus_file_runs_in_eager_pytorch(row: Row) -> None:
    """build() gives an eval-mode model that runs on both input sets, batch and length differing."""
    corpus = _module(row.name)
    model = corpus.build()
    assert not model.training
    assert set(corpus.CONSTRUCTS) <= KNOWN_CONSTRUCTS
    example, other = corpus.example_inputs(), corpus.other_inputs()
    with torch.inference_mode():
        first, second = model(*example), model(*other)
    assert _flatten(first) and _flatten(second)
    if not getattr(corpus, "STATIC", False):  # a model written for one shape has no other
        assert _flatten(example)[0].shape != _flatten(other)[0].shape
    torch.testing.assert_close(_flatten(model(*example)), _flatten(first))  # deterministic


@pytest.mark.parametrize("row", CORPUS, ids=[row.name for row in CORPUS])
def test_corpus_file_names_its_source_and_license(row: Row) -> None:
    header = (HERE / f"{row.name}.py").read_text().split('"""')[1]
    for field in ("Source:", "Commit:", "License:", "Copyright", "Changed:"):
        assert field in header, f"{row.name}.py: header lacks {field}"
    assert re.search(r"Commit: [0-9a-f]{40}\b", header)
    license_file = re.search(r"\((tests/corpus/LICENSES/[\w.-]+\.txt)\)", header)
    assert license_file and (HERE.parent.parent / license_file.group(1)).is_file()


def test_readme_lists_every_model() -> None:
    readme = (HERE / "README.md").read_text()
    for row in CORPUS:
        assert f"`{row.name}`" in readme, row.name
