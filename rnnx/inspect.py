"""`rnnx inspect`: what an export directory, an ONNX file or a TorchScript file holds.

Reading only: nothing is run. Each kind of path has one reader in `READERS` (a `.pt2`
AOTInductor package would be one more entry); each returns an `Inspection`, which
`Inspection.to_dict()` turns into a JSON document with stable keys and `format_text` into
aligned plain-text tables. torch and onnx are imported inside the readers that need them.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rnnx.core.errors import RnnxError, first_line
from rnnx.core.machine import this_machine
from rnnx.core.manifest import MANIFEST, Manifest, read_manifest
from rnnx.core.metadata import PREFIX, TORCHSCRIPT_FILE, ArtifactMetadata, parse_metadata
from rnnx.core.signature import Signature, all_fixed
from rnnx.core.text import cut_strings, terminal_safe
from rnnx.formats import FORMATS, runtimes_for

# A symbolic dim that is an expression over named axes ("time*batch") rather than an axis.
_DERIVED = re.compile(r"[^A-Za-z0-9_]")
TOP_OPS = 10


@dataclasses.dataclass(frozen=True)
class Inspection:
    """What inspect found. Fields not known for a kind of path are None (or empty)."""

    path: str
    reader: str  # the READERS key that read it: "export", "onnx", "torchscript"
    size: int | None = None  # bytes, single files
    schema: int | None = None  # the rnnx manifest/metadata schema
    rnnx_version: str | None = None
    torch_version: str | None = None
    model: str | None = None  # "layer" (a bare nn.RNN/LSTM/GRU) or "module" (a whole model)
    class_path: str | None = None
    layer: str | None = None  # LayerSpec.describe()
    spec: Mapping[str, Any] | None = None
    stateless: bool | None = None
    opset: int | None = None
    signature: Mapping[str, Any] | None = None  # see signature_summary()
    artifacts: tuple[Mapping[str, Any], ...] = ()
    verification: Mapping[str, Any] | None = None
    graph: Mapping[str, Any] | None = None  # ONNX files: see onnx_graph_summary()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["class"] = data.pop("class_path")
        # values from the file are cut (json.dumps escapes the control characters)
        return cut_strings({key: data[key] for key in _KEYS}, JSON_LIMIT)


JSON_LIMIT = 4096  # characters of one string value in `rnnx inspect --json`
_KEYS = (
    "path", "reader", "size", "schema", "rnnx_version", "torch_version", "model", "class",
    "layer", "spec", "stateless", "opset", "signature", "artifacts", "verification", "graph",
    "notes",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Reader:
    """One kind of path inspect understands."""

    label: str  # what the text output calls it
    description: str  # for the error when nothing matches
    matches: Callable[[Path], bool]
    read: Callable[[Path], Inspection]


def inspect(path: str | os.PathLike) -> Inspection:
    """Inspect an export directory, an ONNX file or an rnnx TorchScript file."""
    path = Path(path)
    if not path.exists():
        raise RnnxError(f"'{path}' not found")
    for reader in READERS.values():
        if reader.matches(path):
            return reader.read(path)
    *others, last = [r.description for r in READERS.values()]
    expected = f"{', '.join(others)} or {last}" if others else last
    raise RnnxError(f"'{path}' is not {expected}")


# --- export directories -------------------------------------------------------------------------


def read_export_dir(path: Path) -> Inspection:
    manifest = read_manifest(path)
    raw = _raw_signature(path / MANIFEST)
    artifacts = []
    for name, file in manifest.artifacts.items():
        artifact_path = path / file
        artifacts.append(
            {
                "format": name,
                "file": file,
                "size": artifact_path.stat().st_size if artifact_path.is_file() else None,
                "runtimes": [r.name for r in runtimes_for(name)],
                "description": FORMATS[name].description if name in FORMATS else None,
            }
        )
    notes = [
        f"{a['file']} is listed in the manifest but missing" for a in artifacts if a["size"] is None
    ]
    notes += [f"doctor: {d.get('hazard')}: {d.get('message')}" for d in manifest.doctor]
    notes += format_outcomes(manifest)
    return Inspection(
        path=str(path),
        reader="export",
        schema=manifest.schema,
        rnnx_version=manifest.rnnx_version or None,
        torch_version=manifest.torch_version or None,
        model=manifest.model,
        class_path=manifest.class_path,
        layer=manifest.spec.describe() if manifest.spec else None,
        spec=manifest.spec.to_dict() if manifest.spec else None,
        stateless=manifest.stateless,
        opset=manifest.opset,
        signature=signature_summary(manifest.signature, raw),
        artifacts=tuple(artifacts),
        verification=verification_summary(manifest),
        notes=tuple(notes),
    )


def format_outcomes(manifest: Manifest) -> list[str]:
    """Per format: left out (and why), or the capture route that made it and why the routes
    before it failed (the manifest's notes)."""
    lines = []
    for name, note in manifest.notes.items():
        if not isinstance(note, Mapping):
            continue
        if note.get("skipped"):
            lines.append(f"{name}: not written: {note['skipped']}")
        if note.get("route"):
            lines.append(f"{name}: captured by route {note['route']}")
            failed = [f for f in note.get("routes_failed") or () if isinstance(f, Mapping)]
            lines += [f"{name}: route {f.get('route')} failed: {f.get('reason')}" for f in failed]
    return lines


def _raw_signature(manifest_path: Path) -> Mapping[str, Any]:
    """The signature as written (read_manifest has checked it): keys the typed Signature may
    not carry yet, such as "axes"."""
    data = json.loads(manifest_path.read_text())
    return data.get("signature") or {}


def verification_summary(manifest: Manifest) -> Mapping[str, Any] | None:
    report = manifest.verification
    if not isinstance(report, Mapping):
        return None
    rows = []
    for artifact, row in (report.get("summary") or {}).items():
        rows.append(
            {
                "artifact": artifact,
                "passed": row.get("passed"),
                "max_abs_error": row.get("max_abs_error"),
                "max_rel_error": row.get("max_rel_error"),
                "cases": row.get("cases"),
                "skipped": list(row.get("skipped") or []),
            }
        )
    machines = [
        {
            "cpu_class": record.get("cpu_class"),
            "emulated": bool(record.get("emulated")),
            "onnxruntime": (record.get("versions") or {}).get("onnxruntime"),
            "artifacts": list(record.get("artifacts") or []),
        }
        for record in manifest.verified_on
    ]
    return {
        "passed": report.get("passed"),
        "atol": report.get("atol"),
        "rtol": report.get("rtol"),
        "reduced_precision": report.get("reduced_precision") or {},
        "artifacts": rows,
        "verified_on": machines,
        "this_cpu_class": this_machine().cpu_class,
    }


# --- the signature ------------------------------------------------------------------------------


def signature_summary(signature: Signature, raw: Mapping[str, Any] = {}) -> dict[str, Any]:
    """Inputs and outputs with their dims, roles and state links; the named axes with their
    minimum and multiple (1 and 1 unless the signature's "axes" list says otherwise)."""
    fed_by = {i: o for o, i in signature.state_pairs}
    feeds = dict(signature.state_pairs)
    inputs = [
        _tensor(t, "state" if t.name in fed_by else t.role or "data", fed_by=fed_by.get(t.name))
        for t in signature.inputs
    ]
    outputs = [
        _tensor(t, "state" if t.name in feeds else t.role or "data", feeds=feeds.get(t.name))
        for t in signature.outputs
    ]
    declared = raw.get("axes") or signature.to_dict().get("axes") or []
    return {
        "inputs": inputs,
        "outputs": outputs,
        "state_pairs": [list(p) for p in signature.state_pairs],
        "streamable": signature.streamable,
        "axes": _axes([*signature.inputs, *signature.outputs], declared),
    }


def _tensor(tensor: Any, role: str, **links: str | None) -> dict[str, Any]:
    return {
        "name": tensor.name,
        "dims": list(tensor.dims),
        "derived_dims": [d for d in tensor.dims if is_derived(d)],
        "dtype": tensor.dtype,
        "role": role,
        **links,
    }


def is_derived(dim: Any) -> bool:
    """A dim computed from named axes ("time*batch"), not an axis of its own."""
    return isinstance(dim, str) and bool(_DERIVED.search(dim))


def _axes(tensors: Iterable[Any], declared: Any) -> list[dict[str, Any]]:
    limits = {}
    if isinstance(declared, list):
        for axis in declared:
            if isinstance(axis, Mapping) and isinstance(axis.get("name"), str):
                limits[axis["name"]] = axis
    names = [d for t in tensors for d in t.dims if isinstance(d, str) and not is_derived(d)]
    axes = []
    for name in dict.fromkeys([*names, *limits]):
        axis = limits.get(name, {})
        axes.append({"name": name, "min": axis.get("min", 1), "multiple": axis.get("multiple", 1)})
    return axes


def _metadata_fields(metadata: ArtifactMetadata, raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "schema": metadata.schema,
        "rnnx_version": metadata.version or None,
        "model": "layer" if metadata.spec else "module",
        "layer": metadata.spec.describe() if metadata.spec else None,
        "spec": metadata.spec.to_dict() if metadata.spec else None,
        "signature": signature_summary(metadata.signature, raw),
    }


def _read_rnnx_metadata(props: Mapping[str, str], source: Path) -> tuple[dict[str, Any], str]:
    """The Inspection fields from an artifact's rnnx metadata, or a note on why there are none.

    A malformed signature is reported as a note, not an error: inspect is how one finds out.
    """
    if PREFIX + "signature" not in props:
        return {}, "no rnnx metadata (not exported by rnnx)"
    try:
        metadata = parse_metadata(props, str(source))
    except RnnxError as error:
        return {}, f"rnnx metadata unreadable: {error}"
    return _metadata_fields(metadata, _json_object(props[PREFIX + "signature"])), ""


def _json_object(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, Mapping) else {}


# --- ONNX files ---------------------------------------------------------------------------------


def read_onnx(path: Path) -> Inspection:
    import onnx

    try:
        model = onnx.load(os.fspath(path), load_external_data=False)
    except Exception as error:  # a protobuf DecodeError, or an OSError
        first = first_line(error)
        raise RnnxError(f"'{path}' is not a readable ONNX model ({first})") from None
    if not model.graph.node and not model.graph.input and not model.opset_import:
        raise RnnxError(f"'{path}' is not an ONNX model (no graph, inputs or opset imports)")
    props = {p.key: p.value for p in model.metadata_props}
    fields, note = _read_rnnx_metadata(props, path)
    opsets = {p.domain or "ai.onnx": p.version for p in model.opset_import}
    return Inspection(
        path=str(path),
        reader="onnx",
        size=path.stat().st_size,
        opset=opsets.get("ai.onnx"),
        graph=onnx_graph_summary(model),
        notes=(note,) if note else (),
        **fields,
    )


def onnx_graph_summary(model: Any) -> dict[str, Any]:
    """What any ONNX model tells without running it."""
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    ops: collections.Counter[str] = collections.Counter()
    for node in _nodes(graph):
        ops[
            f"{node.domain}::{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
        ] += 1
    return {
        "inputs": [_value_info(v) for v in graph.input if v.name not in initializers],
        "outputs": [_value_info(v) for v in graph.output],
        "opset_imports": {p.domain or "ai.onnx": p.version for p in model.opset_import},
        "producer_name": model.producer_name,
        "producer_version": model.producer_version,
        "ir_version": model.ir_version,
        "nodes": sum(ops.values()),
        "op_types": dict(ops.most_common(TOP_OPS)),
        "metadata_keys": sorted(p.key for p in model.metadata_props),
    }


def _nodes(graph: Any) -> Iterable[Any]:
    """Every node, those in subgraphs (Scan, Loop, If bodies) included."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _nodes(attribute.g)
            for subgraph in attribute.graphs:
                yield from _nodes(subgraph)


def _value_info(value: Any) -> dict[str, Any]:
    import onnx

    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return {"name": value.name, "dims": None, "dtype": kind or "unknown"}
    tensor = value.type.tensor_type
    dims: list[int | str] | None = None
    if tensor.HasField("shape"):
        dims = [
            d.dim_value if d.HasField("dim_value") else d.dim_param or "?" for d in tensor.shape.dim
        ]
    try:
        dtype = str(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
    except Exception:  # undefined, or a type numpy has no name for (bfloat16, float8)
        dtype = onnx.TensorProto.DataType.Name(tensor.elem_type).lower()
    return {"name": value.name, "dims": dims, "dtype": dtype}


# --- TorchScript files --------------------------------------------------------------------------


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive: a zip with code/ and constants.pkl (torch.save files have
    neither). A .pt2 package is also a zip: it is left for a reader of its own."""
    if not path.is_file() or path.suffix == ".pt2" or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)


def read_torchscript(path: Path) -> Inspection:
    from rnnx.exporter.torchscript_export import read_metadata

    try:
        props = read_metadata(path)
    except ValueError as error:
        raise RnnxError(f"'{path}': {TORCHSCRIPT_FILE} is not valid JSON ({error})") from None
    except Exception as error:  # torch.jit.load's RuntimeError
        first = first_line(error)
        raise RnnxError(f"'{path}' is not a readable TorchScript file ({first})") from None
    fields, note = _read_rnnx_metadata(props, path)
    return Inspection(
        path=str(path),
        reader="torchscript",
        size=path.stat().st_size,
        notes=(note,) if note else (),
        **fields,
    )


READERS: dict[str, Reader] = {
    "export": Reader("export directory", "an rnnx export directory", Path.is_dir, read_export_dir),
    "onnx": Reader(
        "ONNX file",
        "an ONNX file (.onnx)",
        lambda p: p.is_file() and p.suffix == ".onnx",
        read_onnx,
    ),
    "torchscript": Reader(
        "TorchScript file", "a TorchScript file", is_torchscript, read_torchscript
    ),
}


# --- text ---------------------------------------------------------------------------------------


def format_text(inspection: Inspection) -> str:
    """Aligned plain-text tables, one section per thing known."""
    i = inspection
    label = READERS[i.reader].label if i.reader in READERS else i.reader
    lines = [terminal_safe(f"{i.path}: {label}", None)]
    facts = [
        ("size", f"{i.size} bytes" if i.size is not None else None),
        ("schema", i.schema),
        ("rnnx", i.rnnx_version),
        ("torch", i.torch_version),
        ("model", i.model),
        ("class", i.class_path),
        ("layer", i.layer),
        ("stateless", _yes_no(i.stateless)),
        ("opset", i.opset),
    ]
    lines += _pairs([(k, v) for k, v in facts if v is not None])
    if i.signature is not None:
        lines += _signature_text(i.signature)
    if i.artifacts:
        lines += ["", "artifacts"]
        lines += _table(
            ("format", "file", "bytes", "runtimes"),
            [
                (a["format"], a["file"], "missing" if a["size"] is None else a["size"],
                 ", ".join(a["runtimes"]) or "-")
                for a in i.artifacts
            ],
            right=(2,),
        )  # fmt: skip
    if i.verification is not None:
        lines += _verification_text(i.verification)
    if i.graph is not None:
        lines += _graph_text(i.graph)
    if i.notes:
        lines += ["", "notes"] + [f"  {terminal_safe(note, 500)}" for note in i.notes]
    # the cells were escaped and cut; a last pass leaves no control character in any line
    return "\n".join(terminal_safe(line, None) for line in lines)


def _signature_text(signature: Mapping[str, Any]) -> list[str]:
    fixed = all_fixed(t["dims"] for t in signature["inputs"])
    shapes = ", fixed shapes: forward takes the example's only" if fixed else ""
    lines = ["", f"signature (streamable: {_yes_no(signature['streamable'])}{shapes})"]
    rows = []
    for direction, tensors in (("in", signature["inputs"]), ("out", signature["outputs"])):
        for t in tensors:
            link = ""
            if t.get("fed_by"):
                link = f"<- {t['fed_by']}"
            elif t.get("feeds"):
                link = f"-> {t['feeds']}"
            rows.append((direction, t["name"], _dims(t["dims"]), t["dtype"], t["role"], link))
    lines += _table(("", "name", "dims", "dtype", "role", "state"), rows)
    if any(t["derived_dims"] for t in [*signature["inputs"], *signature["outputs"]]):
        lines.append("  (=...) a dim derived from the named axes")
    if signature["axes"]:
        lines += ["", "axes"]
        lines += _table(
            ("name", "min", "multiple"),
            [(a["name"], a["min"], a["multiple"]) for a in signature["axes"]],
            right=(1, 2),
        )
    return lines


def _verification_text(report: Mapping[str, Any]) -> list[str]:
    status = {True: "PASS", False: "FAIL", None: "-"}
    reduced = "".join(
        f"; {name}: atol {atol}, rtol {rtol}"
        for name, (atol, rtol) in report["reduced_precision"].items()
    )
    tolerances = f"atol {report['atol']}, rtol {report['rtol']}{reduced}"
    lines = ["", f"verification: {status[report['passed']]} ({tolerances})"]
    lines += _table(
        ("artifact", "result", "max abs", "max rel", "cases"),
        [
            (r["artifact"], status[r["passed"]], _error(r["max_abs_error"]),
             _error(r["max_rel_error"]), r["cases"])
            for r in report["artifacts"]
        ],
        right=(2, 3, 4),
    )  # fmt: skip
    lines += [f"  {r['artifact']}: a check skipped: {reason}"
              for r in report["artifacts"] for reason in r.get("skipped", ())]  # fmt: skip
    machines = report.get("verified_on") or []
    if machines:
        here = report.get("this_cpu_class")
        lines += ["", f"verified on (this machine: {here})"]
        lines += _table(
            ("cpu class", "onnxruntime", "artifacts"),
            [
                (m["cpu_class"] + (" (emulated)" if m["emulated"] else ""),
                 m["onnxruntime"] or "-", ", ".join(m["artifacts"]))
                for m in machines
            ],
        )  # fmt: skip
    return lines


def _graph_text(graph: Mapping[str, Any]) -> list[str]:
    opsets = ", ".join(f"{d} {v}" for d, v in graph["opset_imports"].items())
    producer = " ".join(p for p in (graph["producer_name"], graph["producer_version"]) if p)
    lines = ["", "onnx graph"]
    lines += _pairs(
        [
            ("producer", producer or "-"),
            ("ir version", graph["ir_version"]),
            ("opsets", opsets or "-"),
            ("nodes", graph["nodes"]),
            ("metadata", ", ".join(graph["metadata_keys"]) or "-"),
        ]
    )
    rows = [
        (direction, v["name"], "?" if v["dims"] is None else _dims(v["dims"]), v["dtype"])
        for direction, values in (("in", graph["inputs"]), ("out", graph["outputs"]))
        for v in values
    ]
    lines += [""] + _table(("", "name", "dims", "dtype"), rows)
    if graph["op_types"]:
        lines += ["", f"ops (top {TOP_OPS})"]
        lines += _table(("op", "count"), list(graph["op_types"].items()), right=(1,))
    return lines


def _dims(dims: Sequence[Any]) -> str:
    return "[" + ", ".join(f"={d}" if is_derived(d) else str(d) for d in dims) + "]"


def _error(value: Any) -> str:
    return f"{value:.2e}" if isinstance(value, (int, float)) else "-"


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def _pairs(pairs: Sequence[tuple[str, Any]]) -> list[str]:
    width = max((len(k) for k, _ in pairs), default=0)
    return [f"  {k:<{width}}  {terminal_safe(v)}" for k, v in pairs]


def _table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()
) -> list[str]:
    # every cell may come from the file: escaped and cut before it reaches the terminal
    cells = [[str(c) for c in header]] + [[terminal_safe(c) for c in row] for row in rows]
    widths = [max(len(row[c]) for row in cells) for c in range(len(header))]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(w) if c in right else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(row, widths))
        ]
        return ("  " + "  ".join(parts)).rstrip()

    return [line(row) for row in cells]
