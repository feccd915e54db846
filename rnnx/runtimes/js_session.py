"""The "web" and "node" runtimes: ONNX artifacts run by onnxruntime-web (WASM, in headless
Chromium) and by onnxruntime-node, through rnnx/js/rnnx.mjs, the same ES module `rnnx web`
ships to browsers. Verifying these runtimes verifies that module: its input checks, its NaN
policy, and its streams (a Python Stream over a JS session steps a JS Stream, the states
staying in JavaScript between chunks).
"""

from __future__ import annotations

import base64
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from rnnx.core.errors import RnnxError
from rnnx.core.manifest import Manifest
from rnnx.core.signature import Signature
from rnnx.runtimes.base import Session
from rnnx.runtimes.js_host import Host, shared
from rnnx.runtimes.non_finite import check_policy, graph_hides_nan


def encode(array: np.ndarray) -> dict[str, Any]:
    """A tensor on the wire: dtype, dims and base64 of its little-endian bytes."""
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    data = base64.b64encode(array.tobytes()).decode("ascii")
    return {"dtype": "bool" if array.dtype == bool else str(array.dtype), "dims": list(array.shape),
            "data": data}  # fmt: skip


def decode(tensor: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(tensor["dtype"])
    return np.frombuffer(base64.b64decode(tensor["data"]), dtype).reshape(tensor["dims"]).copy()


class JsSession(Session):
    """An ONNX model inside a shared JavaScript host (host.mjs), by handle."""

    runtime = "js"

    def __init__(
        self,
        host: Host,
        path: str | Path,
        signature: Signature,
        *,
        threads: int | None = None,
        non_finite: str = "propagate",
    ) -> None:
        super().__init__(signature)
        self._host = host
        self._threads = threads or 0
        options = {"nonFinite": check_policy(non_finite), "hidesNan": graph_hides_nan(path)}
        if threads and self.runtime == "node":
            options["threads"] = threads
        answer = self._call({"op": "load", "model": host.model_source(Path(path)),
                             "signature": signature.to_dict(), "options": options})  # fmt: skip
        self._handle = answer["handle"]
        self.last_ms: float | None = None  # the last call's time inside JavaScript
        weakref.finalize(self, host.release, "models", self._handle, threads=self._threads)

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._host.call(request, threads=self._threads)

    def _outputs(self, answer: dict[str, Any]) -> dict[str, np.ndarray]:
        self.last_ms = answer.get("ms")
        return {name: decode(t) for name, t in answer["outputs"].items()}

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        encoded = {name: encode(a) for name, a in feeds.items()}
        return self._outputs(self._call({"op": "run", "handle": self._handle, "feeds": encoded}))

    # Streams live in JavaScript (rnnx.mjs's Stream): a step sends the chunk, not the states.
    def _state_from_numpy(self, state: dict[str, np.ndarray]) -> _JsStream:
        first = self.signature.state_inputs[0]
        batch = state[first].shape[self.signature.input(first).dims.index("batch")]
        encoded = {name: encode(a) for name, a in state.items()}
        answer = self._call({"op": "stream", "handle": self._handle, "batch": int(batch),
                             "state": encoded})  # fmt: skip
        return _JsStream(self._host, answer["stream"], self._threads)

    def _state_to_numpy(self, state: _JsStream) -> dict[str, np.ndarray]:
        answer = self._call({"op": "state", "stream": state.id})
        return {name: decode(t) for name, t in answer["state"].items()}

    def _step(self, feeds: dict[str, np.ndarray], state: _JsStream) -> tuple[dict, Any]:
        encoded = {name: encode(a) for name, a in feeds.items()}
        answer = self._call({"op": "step", "stream": state.id, "chunk": encoded})
        return self._outputs(answer), state


class _JsStream:
    """A stream's handle in the host; released when the Python stream lets go of it."""

    def __init__(self, host: Host, id: int, threads: int) -> None:
        self.id = id
        weakref.finalize(self, host.release, "streams", id, threads=threads)


class NodeSession(JsSession):
    runtime = "node"

    @property
    def providers(self) -> list[str]:
        return ["node:cpu"]


class WebSession(JsSession):
    runtime = "web"

    @property
    def providers(self) -> list[str]:
        return [f"web:wasm:{self._threads}t" if self._threads else "web:wasm"]


def _check_cpu(runtime: str, provider: str) -> None:
    if provider != "cpu":
        raise RnnxError(f"the {runtime} runtime runs on cpu here, not {provider!r}")


def _open(
    kind: str,
    session: type[JsSession],
    path: Path,
    manifest: Manifest,
    *,
    provider: str = "cpu",
    allow_fallback: bool = False,
    threads: int | None = None,
    non_finite: str = "propagate",
) -> JsSession:
    _check_cpu(kind, provider)
    return session(shared(kind), path, manifest.signature, threads=threads, non_finite=non_finite)


def open_node(path: Path, manifest: Manifest, **options: Any) -> JsSession:
    """The "node" runtime's opener (rnnx/formats.py): onnxruntime-node's CPU provider."""
    return _open("node", NodeSession, path, manifest, **options)


def open_web(path: Path, manifest: Manifest, **options: Any) -> JsSession:
    """The "web" runtime's opener (rnnx/formats.py): onnxruntime-web's WASM backend in headless
    Chromium; `threads` > 1 runs WASM threads (the page is cross-origin isolated)."""
    return _open("web", WebSession, path, manifest, **options)
