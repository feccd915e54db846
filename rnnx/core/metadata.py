"""The metadata every artifact carries, versioned: what C++ and other consumers read.

Stored as string key/values: ONNX `metadata_props`, and for TorchScript an extra file
(`rnnx_metadata.json`) holding the same keys. The contract, schema 1:

  rnnx.schema     "1": the version of this contract
  rnnx.version    the rnnx version that wrote it
  rnnx.signature  JSON: the Signature (inputs, outputs with dims, state pairs, streamable, and
                  optionally `axes`: the minimum size and stride of a symbolic axis), the
                  single source of names, layouts and state pairs. Every data input has a
                  batch axis and every state a batch axis and no time axis, unless no input
                  has a symbolic axis at all (a fixed-shape model: forward takes one shape)
  rnnx.spec       JSON, bare layers only: the LayerSpec

The Python reader here and the C++ reader (cpp/src/signature.cpp) reject the same malformed
inputs: both parse the shared fixtures in tests/data/metadata/ in the tests.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from rnnx.core.errors import RnnxError
from rnnx.core.signature import Signature
from rnnx.core.spec import LayerSpec

SCHEMA = 1
PREFIX = "rnnx."
TORCHSCRIPT_FILE = "rnnx_metadata.json"  # not "rnnx.json": that is the export's manifest


@dataclasses.dataclass(frozen=True)
class ArtifactMetadata:
    schema: int
    version: str
    signature: Signature
    spec: LayerSpec | None = None


def metadata_props(signature: Signature, spec: LayerSpec | None, version: str) -> dict[str, str]:
    props = {
        "schema": str(SCHEMA),
        "version": version,
        "signature": json.dumps(signature.to_dict()),
    }
    if spec is not None:
        props["spec"] = json.dumps(spec.to_dict())
    return {PREFIX + key: value for key, value in props.items()}


def parse_metadata(props: Mapping[str, str], source: str) -> ArtifactMetadata:
    """Read an artifact's rnnx metadata; one-line RnnxError naming `source` when malformed."""
    if PREFIX + "signature" not in props:
        raise RnnxError(f"'{source}' has no rnnx metadata: export it with rnnx")
    schema = check_schema(props.get(PREFIX + "schema"), f"'{source}'")
    try:
        data = json.loads(props[PREFIX + "signature"])
    except ValueError as error:
        raise RnnxError(f"'{source}': rnnx.signature is not valid JSON ({error})") from None
    signature = Signature.from_dict(data, f"'{source}': rnnx.signature")
    spec = None
    if props.get(PREFIX + "spec"):
        try:
            spec = LayerSpec.from_dict(json.loads(props[PREFIX + "spec"]))
        except (ValueError, TypeError, KeyError) as error:
            raise RnnxError(f"'{source}': rnnx.spec is malformed ({error})") from None
    return ArtifactMetadata(schema, props.get(PREFIX + "version", ""), signature, spec)


def check_schema(value: Any, source: str) -> int:
    """The schema version of a manifest or artifact: absent is an older rnnx, larger a newer."""
    if value is None:
        raise RnnxError(f"{source} was written by an older rnnx (no schema version): re-export it")
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not is_int and not (isinstance(value, str) and value.isdigit()):
        raise RnnxError(f"{source}: schema version {value!r} is not an integer")
    schema = int(value)
    if schema < 1:
        raise RnnxError(f"{source}: schema version {value!r} is not valid")
    if schema > SCHEMA:
        raise RnnxError(
            f"{source} was written by a newer rnnx (schema {schema}); "
            f"this rnnx reads schema {SCHEMA}: upgrade rnnx"
        )
    return schema
