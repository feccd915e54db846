"""`rnnx inspect`: export directories, rnnx and foreign ONNX files, rnnx TorchScript files, and
one-line errors for anything else; through the CLI and through rnnx.inspect.inspect."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto, helper
from torch import nn

import rnnx
from rnnx.cli import main
from rnnx.compare import VerifyOptions
from rnnx.core.errors import RnnxError
from rnnx.core.signature import Signature
from rnnx.inspect import READERS, format_text, inspect, signature_summary

KEYS = [
    "path", "reader", "size", "schema", "rnnx_version", "torch_version", "model", "class",
    "layer", "spec", "stateless", "opset", "signature", "artifacts", "verification", "graph",
    "notes",
]  # fmt: skip


class Tagger(nn.Module):
    """A whole model: batch_first GRU and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(3, 5, batch_first=True)
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.gru(x)
        return self.head(y)


def cli(*args: str):
    return CliRunner().invoke(main, ["inspect", *map(str, args)])


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exports")
    torch.manual_seed(0)
    paths = {name: root / name for name in ("lstm", "module", "gru", "int8")}
    rnnx.export(nn.LSTM(4, 8).eval(), paths["lstm"])
    rnnx.export(Tagger().eval(), paths["module"], example_inputs=(torch.randn(2, 5, 3),))
    rnnx.export(nn.GRU(3, 6, num_layers=2, batch_first=True).eval(), paths["gru"])
    rnnx.export(nn.LSTM(4, 8).eval(), paths["int8"], rnnx.ExportOptions(quantize="int8"))
    return paths


@pytest.fixture
def foreign_onnx(tmp_path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    nodes = [
        helper.make_node("Add", ["x", "bias"], ["t"]),
        helper.make_node("Relu", ["t"], ["u"]),
        helper.make_node("Relu", ["u"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "handmade", [x], [y], [bias])
    model = helper.make_model(
        graph, producer_name="handmade", opset_imports=[helper.make_opsetid("", 17)]
    )
    model.producer_version = "0.1"
    helper.set_model_props(model, {"author": "me"})
    path = tmp_path / "foreign.onnx"
    onnx.save(model, path)
    return path


def test_bare_lstm_directory(exports) -> None:
    result = cli(exports["lstm"])
    assert result.exit_code == 0, result.output
    text = result.output
    for expected in ("export directory", "LSTM(4→8), 1 layer(s)", "opset      18",
                     "torch.nn.modules.rnn.LSTM", "streamable: yes", "model.torchscript.pt",
                     "onnxruntime, openvino, node, web, cpp-onnxruntime",
                     "verification: PASS"):  # fmt: skip
        assert expected in text
    rows = {
        line.split()[1]: line.split() for line in text.splitlines() if line[2:5] in ("in ", "out")
    }
    assert rows["h0"][2:] == ["[1,", "batch,", "8]", "float32", "state", "<-", "h_n"]
    assert rows["c_n"][-3:] == ["state", "->", "c0"]
    assert rows["input"][2:6] == ["[time,", "batch,", "4]", "float32"]

    inspection = inspect(exports["lstm"])
    assert inspection.reader == "export" and inspection.model == "layer"
    assert inspection.spec["kind"] == "LSTM"
    signature = inspection.signature
    h0 = next(t for t in signature["inputs"] if t["name"] == "h0")
    assert h0 == {"name": "h0", "dims": [1, "batch", 8], "derived_dims": [], "dtype": "float32",
                  "role": "state", "fed_by": "h_n"}  # fmt: skip
    assert signature["state_pairs"] == [["h_n", "h0"], ["c_n", "c0"]]
    assert signature["axes"] == [
        {"name": "time", "min": 1, "multiple": 1},
        {"name": "batch", "min": 1, "multiple": 1},
    ]
    artifacts = {a["format"]: a for a in inspection.artifacts}
    assert set(artifacts) == {"onnx", "torchscript"}
    assert artifacts["onnx"]["size"] == (exports["lstm"] / "model.onnx").stat().st_size
    assert artifacts["torchscript"]["runtimes"] == ["torchscript", "cpp-torchscript"]
    verification = inspection.verification
    assert verification["passed"] is True
    rows = {r["artifact"]: r for r in verification["artifacts"]}
    assert {"onnx", "torchscript", "onnx streamed"} <= set(rows)
    assert rows["onnx"]["passed"] and rows["onnx"]["cases"] > 0
    assert rows["onnx"]["max_abs_error"] < 1e-5


def test_whole_model_directory(exports) -> None:
    inspection = inspect(exports["module"])
    assert inspection.model == "module"
    assert inspection.class_path.endswith("Tagger")
    assert inspection.layer is None and inspection.spec is None
    signature = inspection.signature
    assert [t["role"] for t in signature["inputs"]] == ["data"]
    assert signature["inputs"][0]["dims"] == ["batch", "time", 3]
    assert signature["outputs"][0]["dims"] == ["batch", "time", 2]
    assert signature["streamable"] is False
    result = cli(exports["module"])
    assert result.exit_code == 0 and "model      module" in result.output


def test_batch_first_gru(exports) -> None:
    inspection = inspect(exports["gru"])
    assert inspection.layer == "GRU(3→6), 2 layer(s), batch_first"
    data, h0 = inspection.signature["inputs"]
    assert data["dims"] == ["batch", "time", 3]
    assert h0["dims"] == [2, "batch", 6] and h0["fed_by"] == "h_n"
    assert [a["name"] for a in inspection.signature["axes"]] == ["batch", "time"]


def test_int8_artifact(exports) -> None:
    inspection = inspect(exports["int8"])
    artifacts = {a["format"]: a for a in inspection.artifacts}
    assert artifacts["onnx-int8"]["file"] == "model.int8.onnx"
    assert artifacts["onnx-int8"]["runtimes"] == ["onnxruntime", "node", "web"]
    assert artifacts["onnx-int8"]["size"] > 0
    atol, rtol = VerifyOptions().tolerance("int8")
    assert inspection.verification["reduced_precision"] == {"int8": [atol, rtol]}
    assert any(r["artifact"] == "onnx-int8" for r in inspection.verification["artifacts"])
    text = format_text(inspection)
    assert "model.int8.onnx" in text and f"int8: atol {atol}" in text

    quantized = inspect(exports["int8"] / "model.int8.onnx")
    assert quantized.graph["op_types"]["com.microsoft::DynamicQuantizeLSTM"] == 1
    assert quantized.graph["opset_imports"]["com.microsoft"] == 1


def test_rnnx_onnx_file(exports) -> None:
    path = exports["lstm"] / "model.onnx"
    inspection = inspect(path)
    assert inspection.reader == "onnx" and inspection.size == path.stat().st_size
    assert inspection.schema == 1 and inspection.layer == "LSTM(4→8), 1 layer(s)"
    assert inspection.signature == inspect(exports["lstm"]).signature
    assert inspection.opset == 18
    graph = inspection.graph
    assert [v["name"] for v in graph["inputs"]] == ["input", "h0", "c0"]
    assert graph["inputs"][0] == {"name": "input", "dims": ["time", "batch", 4], "dtype": "float32"}
    assert graph["op_types"]["LSTM"] == 1
    assert "rnnx.signature" in graph["metadata_keys"]
    assert inspection.notes == ()


def test_torchscript_file(exports) -> None:
    path = exports["gru"] / "model.torchscript.pt"
    result = cli(path)
    assert result.exit_code == 0, result.output
    assert "TorchScript file" in result.output and "GRU(3→6)" in result.output
    inspection = inspect(path)
    assert inspection.reader == "torchscript"
    assert inspection.signature == inspect(exports["gru"]).signature


def test_torchscript_without_metadata(tmp_path) -> None:
    path = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.trace(nn.Linear(2, 2), torch.randn(1, 2)), str(path))
    inspection = inspect(path)
    assert inspection.reader == "torchscript" and inspection.signature is None
    assert "no rnnx metadata" in inspection.notes[0]


def test_foreign_onnx(foreign_onnx) -> None:
    inspection = inspect(foreign_onnx)
    assert inspection.signature is None and inspection.schema is None
    assert "no rnnx metadata" in inspection.notes[0]
    graph = inspection.graph
    assert graph["inputs"] == [{"name": "x", "dims": ["N", 3], "dtype": "float32"}]
    assert graph["outputs"] == [{"name": "y", "dims": ["N", 3], "dtype": "float32"}]
    assert graph["opset_imports"] == {"ai.onnx": 17}
    assert graph["producer_name"] == "handmade" and graph["producer_version"] == "0.1"
    assert graph["ir_version"] == onnx.load(foreign_onnx).ir_version
    assert graph["op_types"] == {"Relu": 2, "Add": 1}
    assert graph["metadata_keys"] == ["author"]
    result = cli(foreign_onnx)
    assert result.exit_code == 0, result.output
    for expected in ("ONNX file", "handmade 0.1", "ai.onnx 17", "[N, 3]", "Relu", "author"):
        assert expected in result.output


def test_json_round_trip(exports, foreign_onnx) -> None:
    for path in (exports["lstm"], exports["int8"] / "model.int8.onnx", foreign_onnx):
        result = cli(path, "--json")
        assert result.exit_code == 0, result.output
        document = json.loads(result.output)
        assert list(document) == KEYS
        assert document == json.loads(json.dumps(inspect(path).to_dict()))
    document = json.loads(cli(exports["lstm"], "--json").output)
    assert document["class"] == "torch.nn.modules.rnn.LSTM"
    assert document["graph"] is None and document["size"] is None


def test_axes_minimum_and_multiple(exports, tmp_path) -> None:
    """The signature's optional "axes" list gives each axis a minimum and a multiple."""
    copy = tmp_path / "export"
    copy.mkdir()
    for file in exports["lstm"].iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    manifest = json.loads((copy / "rnnx.json").read_text())
    manifest["signature"]["axes"] = [{"name": "time", "min": 4, "multiple": 2}]
    (copy / "rnnx.json").write_text(json.dumps(manifest))
    inspection = inspect(copy)
    assert inspection.signature["axes"] == [
        {"name": "time", "min": 4, "multiple": 2},
        {"name": "batch", "min": 1, "multiple": 1},
    ]
    result = cli(copy)
    assert result.exit_code == 0, result.output
    assert any(line.split() == ["time", "4", "2"] for line in result.output.splitlines())


def test_derived_dims() -> None:
    signature = Signature.from_dict(
        {
            "inputs": [{"name": "x", "dims": ["batch", "time", 3]}],
            "outputs": [{"name": "flat", "dims": ["time*batch", 2]}],
        }
    )
    summary = signature_summary(signature)
    assert summary["outputs"][0]["derived_dims"] == ["time*batch"]
    assert [a["name"] for a in summary["axes"]] == ["batch", "time"]


def test_readers_are_a_table() -> None:
    """A new kind (a .pt2 package) is one more entry."""
    assert list(READERS) == ["export", "onnx", "torchscript"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing", "not found"),
        (lambda d: _write(d / "notes.txt", "hello"), "is not an rnnx export directory, an ONNX"),
        (lambda d: _write(d / "bad.onnx", "hello"), "is not a readable ONNX model"),
        (lambda d: _mkdir(d / "empty"), "is not an rnnx export directory (no rnnx.json)"),
        (lambda d: _export_dir(d / "broken", "{"), "cannot read manifest"),
        (lambda d: _export_dir(d / "old", "{}"), "has no signature"),
    ],
)
def test_bad_paths(tmp_path, make, message) -> None:
    path = make(tmp_path)
    result = cli(path)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnx: error: ")
    assert message in lines[0] and str(path) in lines[0]
    with pytest.raises(RnnxError, match="'"):
        inspect(path)


def test_torch_save_file_is_not_torchscript(tmp_path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(RnnxError, match="is not an rnnx export directory"):
        inspect(path)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _export_dir(path: Path, manifest: str) -> Path:
    _write(_mkdir(path) / "rnnx.json", manifest)
    return path
