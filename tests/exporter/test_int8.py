"""int8 for every layer kind: the onnx-int8 artifact is written, quantizes the recurrence, and
passes the verifier at the int8 tolerance class, whole-sequence, streamed and with NaN input.

One table over layer kinds (RNN tanh/relu, GRU, LSTM, projected LSTM) with bidirectional,
batch_first, multi-layer and bias-free rows; small sizes. Each export runs rnnx's verifier on
the artifact (its failure would be a VerificationError); the tests then reopen the artifact
through rnnx.load and check it at a shape the verifier does not use, and a stream of it.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import rnnx
from rnnx.compare import VerifyOptions
from rnnx.core.signature import random_inputs
from rnnx.pipeline import ExportOptions, export

KINDS = {
    "rnn_tanh": lambda **kw: nn.RNN(nonlinearity="tanh", **kw),
    "rnn_relu": lambda **kw: nn.RNN(nonlinearity="relu", **kw),
    "gru": nn.GRU,
    "lstm": nn.LSTM,
}
# (kind, layers, bidirectional, batch_first, bias, proj_size)
TABLE = [
    ("rnn_tanh", 1, False, False, True, 0),
    ("rnn_tanh", 2, True, True, True, 0),
    ("rnn_relu", 3, False, False, True, 0),
    ("gru", 2, False, False, True, 0),
    ("gru", 1, True, True, False, 0),
    ("lstm", 2, False, True, True, 0),
    ("lstm", 2, False, False, True, 4),
    ("lstm", 1, True, False, True, 4),
]
INT8 = VerifyOptions().tolerance("int8")


def _id(row: tuple) -> str:
    kind, layers, bidirectional, batch_first, bias, proj = row
    parts = [kind, f"L{layers}"] + ["bidirectional"] * bidirectional + ["batch_first"] * batch_first
    return "-".join(parts + ["nobias"] * (not bias) + [f"proj{proj}"] * bool(proj))


def _layer(row: tuple) -> nn.RNNBase:
    kind, layers, bidirectional, batch_first, bias, proj = row
    torch.manual_seed(0)
    extra = {"proj_size": proj} if proj else {}
    options = dict(num_layers=layers, bias=bias, bidirectional=bidirectional,
                   batch_first=batch_first, **extra)  # fmt: skip
    return KINDS[kind](input_size=5, hidden_size=8, **options).eval()


def _quantized_ops(path) -> list[str]:
    """Op types of the integer MatMuls and quantized LSTMs, subgraphs (Scan bodies) included."""

    def walk(graph):
        for node in graph.node:
            yield node.op_type
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    yield from walk(attribute.g)

    wanted = {"MatMulInteger", "DynamicQuantizeLSTM"}
    return [op for op in walk(onnx.load(str(path)).graph) if op in wanted]


def _eager(layer: nn.RNNBase, feeds: dict) -> np.ndarray:
    states = [torch.from_numpy(v) for k, v in feeds.items() if k != "input"]
    with torch.inference_mode():
        output, _ = layer(torch.from_numpy(feeds["input"]), tuple(states) if len(states) > 1
                          else states[0])  # fmt: skip
    return output.numpy()


@pytest.mark.parametrize("row", TABLE, ids=_id)
def test_int8_artifact_is_verified_and_quantizes_the_recurrence(row, tmp_path) -> None:
    layer = _layer(row)
    result = export(layer, tmp_path, ExportOptions(formats=("onnx",), quantize="int8"))
    summary = result.manifest.verification["summary"]
    assert summary["onnx-int8"]["passed"] and summary["onnx-int8"]["cases"] > 0
    if not row[2]:  # unidirectional layers stream: the verifier streamed the int8 artifact too
        assert summary["onnx-int8 streamed"]["passed"]
    ops = _quantized_ops(tmp_path / "model.int8.onnx")
    kind, layers, bidirectional = row[0], row[1], row[2]
    if kind == "lstm" and not row[5]:
        assert ops.count("DynamicQuantizeLSTM") == layers
    else:  # per layer: a recurrent MatMul per direction (and a projection), all int8
        per_layer = (2 if bidirectional else 1) * (2 if row[5] else 1)
        assert ops.count("MatMulInteger") >= layers * per_layer

    session = rnnx.load(tmp_path, format="onnx-int8")
    feeds = random_inputs(session.signature, {"batch": 2, "time": 31}, seed=3)
    expected = _eager(layer, feeds)
    assert np.allclose(session.run(feeds)["output"], expected, atol=INT8[0], rtol=INT8[1])
    if not bidirectional:  # states in and out: chunks of a stream give the whole sequence
        stream = session.stream(batch=2)
        stream.set_state({k: v for k, v in feeds.items() if k != "input"})
        time_axis = 1 if row[3] else 0
        pieces = np.array_split(feeds["input"], [4, 5, 19], axis=time_axis)
        outputs = []
        for i, piece in enumerate(pieces):
            if i == 2:  # saved and restored into a new stream mid-sequence
                stream.save(tmp_path / "state.npz")
                stream = session.stream(batch=2)
                stream.restore(tmp_path / "state.npz")
            outputs.append(stream.step(np.ascontiguousarray(piece))["output"])
        joined = np.concatenate(outputs, axis=time_axis)
        assert np.allclose(joined, expected, atol=INT8[0], rtol=INT8[1])


def test_the_int8_tolerance_is_what_verification_checks(tmp_path) -> None:
    """The int8 artifact is compared with eager at its own class: a tighter class fails it."""
    layer = _layer(("gru", 1, False, False, True, 0))
    export(layer, tmp_path, ExportOptions(formats=("onnx",), quantize="int8"))
    assert rnnx.verify(tmp_path, layer).passed
    strict = VerifyOptions(reduced_precision=(("int8", 1e-5, 0.0),))
    report = rnnx.verify(tmp_path, layer, strict)
    failed = {check.artifact for check in report.checks if not check.passed}
    assert failed == {"onnx-int8"}


def test_bench_measures_the_int8_gru(tmp_path) -> None:
    """`rnnx bench` finds the int8 artifact of a GRU through the registry, beside eager."""
    from rnnx.benchmark import BenchOptions, bench

    export(_layer(("gru", 2, False, False, True, 0)), tmp_path,
           ExportOptions(formats=("onnx",), quantize="int8", verify=False))  # fmt: skip
    rows = bench(tmp_path, BenchOptions(repeats=1, warmup=0, times=(5,)))
    measured = {row.runtime: row for row in rows}
    assert "onnxruntime:onnx-int8" in measured
    assert measured["onnxruntime:onnx-int8"].ratio_to_eager > 0


def test_the_manifest_records_the_scheme_and_the_cpu_class(tmp_path) -> None:
    from rnnx.core.machine import this_machine

    result = export(_layer(("lstm", 1, False, False, True, 0)), tmp_path,
                    ExportOptions(formats=("onnx",), quantize="int8"))  # fmt: skip
    scheme = result.manifest.quantization
    assert scheme["scheme"] == "portable" and scheme["cpu"] == "any x86-64"
    assert scheme["lstm_weights"].startswith("int8, 7 bits")
    verified = result.manifest.verified_on[0]
    assert verified["cpu_class"] == this_machine().cpu_class
    assert verified["artifacts"] == ["onnx", "onnx-int8"]
    assert result.manifest.verification["machine"]["versions"]["onnxruntime"]


@pytest.fixture
def avx2_class(monkeypatch):
    """This process as a machine of the AVX2 class sees it (oneDNN's own cap, which rnnx's CPU
    class follows); onnxruntime's kernels are not capped: tests/runtimes/test_emulated.py."""
    from rnnx.core.machine import this_machine

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    this_machine.cache_clear()
    yield
    this_machine.cache_clear()


def test_vnni_int8_is_refused_without_vnni(avx2_class, tmp_path) -> None:
    from click.testing import CliRunner

    from rnnx.cli import main
    from rnnx.core.errors import RnnxError, RnnxWarning

    layer = _layer(("gru", 1, False, False, True, 0))
    with pytest.raises(RnnxError, match="cannot verify onnx-int8-vnni needs a CPU with "
                       r"avx512_vnni or avx_vnni \(this one is avx2\).*--no-verify"):  # fmt: skip
        export(layer, tmp_path / "a", ExportOptions(formats=("onnx",), quantize="int8-vnni"))
    assert not (tmp_path / "a").exists()
    export(layer, tmp_path / "b", ExportOptions(formats=("onnx",), quantize="int8,int8-vnni",
                                                verify=False))  # fmt: skip
    with pytest.raises(RnnxError, match="model.int8-vnni.onnx': onnx-int8-vnni needs a CPU"):
        rnnx.load(tmp_path / "b", format="onnx-int8-vnni")
    with pytest.warns(RnnxWarning, match="onnx-int8-vnni needs a CPU .*not verified here"):
        report = rnnx.verify(tmp_path / "b", layer)
    assert report.passed and report.passed_labels() == ["onnx", "onnx-int8"]
    result = CliRunner().invoke(main, ["export", "x.pt", "-o", str(tmp_path / "c"),
                                       "--quantize", "int8-bogus"])  # fmt: skip
    assert result.exit_code != 0 and "int8-vnni" in result.output, result.output


def test_load_warns_once_where_int8_was_never_verified(avx2_class, tmp_path) -> None:
    from rnnx.core.errors import RnnxWarning

    layer = _layer(("rnn_tanh", 1, False, False, True, 0))
    export(layer, tmp_path / "e", ExportOptions(formats=("onnx",), quantize="int8"))
    # exported (and verified) as the AVX2 class: no warning there
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RnnxWarning)
        rnnx.load(tmp_path / "e", format="onnx-int8")
    manifest = tmp_path / "e" / "rnnx.json"
    import json

    data = json.loads(manifest.read_text())
    data["verified_on"][0]["cpu_class"] = "avx512-vnni-bf16"
    manifest.write_text(json.dumps(data))
    with pytest.warns(RnnxWarning, match=r"onnx-int8 was verified on avx512-vnni-bf16, never on "
                      r"this CPU class \(avx2\).*rnnx verify .* --record"):  # fmt: skip
        rnnx.load(tmp_path / "e", format="onnx-int8")
    with warnings.catch_warnings():  # once per artifact and process
        warnings.simplefilter("error", RnnxWarning)
        rnnx.load(tmp_path / "e", format="onnx-int8")
        rnnx.load(tmp_path / "e", format="onnx")  # fp32: the same numbers on every class
    report = rnnx.verify(tmp_path / "e", layer, record=True)
    assert report.passed and json.loads(manifest.read_text())["verified_on"][-1]["cpu_class"] == (
        "avx2"
    )
