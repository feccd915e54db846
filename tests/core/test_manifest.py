"""The manifest contract: schema versions, older exports, artifact paths kept inside."""

from __future__ import annotations

import json

import numpy as np
import pytest
from torch import nn

import rnnx
from rnnx.core.errors import RnnxError
from rnnx.core.manifest import MANIFEST, Manifest, read_manifest
from rnnx.pipeline import ExportOptions, export


@pytest.fixture
def exported(tmp_path):
    export(nn.LSTM(3, 4).eval(), tmp_path / "lstm", ExportOptions(quantize="int8", verify=False))
    return tmp_path / "lstm"


def _edit(directory, change) -> None:
    path = directory / MANIFEST
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def test_round_trip(exported) -> None:
    manifest = read_manifest(exported)
    assert manifest.schema == 1
    assert set(manifest.artifacts) == {"onnx", "torchscript", "onnx-int8"}
    again = Manifest.from_dict(json.loads(json.dumps(manifest.to_dict())), "again")
    assert again == manifest


def test_an_older_export_without_schema_still_loads(exported) -> None:
    """Schema 0 (rnnx 0.1): no "schema" key, int8 filed as "onnx_int8"."""

    def older(data):
        data.pop("schema")
        data["artifacts"]["onnx_int8"] = data["artifacts"].pop("onnx-int8")
        return data

    _edit(exported, older)
    assert read_manifest(exported).artifacts["onnx-int8"] == "model.int8.onnx"
    x = np.ones((2, 1, 3), np.float32)
    assert rnnx.load(exported, format="onnx-int8").run({"input": x})["output"].shape == (2, 1, 4)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: {**d, "schema": 99}, "newer rnnx \\(schema 99\\).*upgrade rnnx"),
        (lambda d: {**d, "schema": "one"}, "schema version 'one' is not an integer"),
        (lambda d: {**d, "artifacts": {"onnx": "../elsewhere.onnx"}}, "not a file inside"),
        (lambda d: {**d, "artifacts": {"onnx": "/etc/passwd"}}, "not a file inside"),
        (lambda d: {**d, "artifacts": ["model.onnx"]}, "must map format names"),
        (lambda d: {**d, "model": "zoo"}, "'model' must be"),
        (lambda d: {k: v for k, v in d.items() if k != "signature"}, "has no signature"),
        (lambda d: {**d, "signature": {"inputs": []}}, "non-empty 'inputs' list"),
        (lambda d: {**d, "spec": {"kind": "LSTM"}}, "'spec' is malformed"),
    ],
    ids=["newer", "not-int", "dotdot", "absolute", "list", "model", "no-signature",
         "empty-inputs", "spec"],
)  # fmt: skip
def test_malformed_manifests_are_one_line_errors(exported, change, message) -> None:
    _edit(exported, change)
    with pytest.raises(RnnxError, match=message) as error:
        rnnx.load(exported)
    assert "\n" not in str(error.value) and MANIFEST in str(error.value)


def test_an_unknown_format_in_the_manifest_is_named(exported) -> None:
    _edit(exported, lambda d: {**d, "artifacts": {**d["artifacts"], "tflite": "model.tflite"}})
    with pytest.raises(RnnxError, match="unknown format 'tflite'"):
        rnnx.verify(exported)
