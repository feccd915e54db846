"""One protocol for every backend: `run(feeds) -> outputs`, named numpy arrays in and out.

The base class validates feeds against the model's Signature once, so every backend reports
the same clear errors before any backend code runs; a backend implements only `_run`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnnx.errors import InputError
from rnnx.exporter.signature import Signature


class Session:
    runtime = "base"

    def __init__(self, signature: Signature) -> None:
        self.signature = signature

    @property
    def providers(self) -> list[str]:
        """Where the computation actually runs (e.g. onnxruntime execution providers)."""
        return ["cpu"]

    def run(self, feeds: Mapping[str, Any] | Sequence[Any]) -> dict[str, np.ndarray]:
        """Run on named inputs (or positional ones, in the signature's order)."""
        named = self._name(feeds)
        self._validate(named)
        return self._run(named)

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _name(self, feeds: Mapping[str, Any] | Sequence[Any]) -> dict[str, np.ndarray]:
        names = self.signature.input_names
        if not isinstance(feeds, Mapping):
            feeds = list(feeds)
            if len(feeds) != len(names):
                raise InputError(
                    f"expected {len(names)} inputs ({', '.join(names)}), got {len(feeds)}"
                )
            feeds = dict(zip(names, feeds))
        unknown = sorted(set(feeds) - set(names))
        if unknown:
            raise InputError(
                f"unknown input {unknown[0]!r}; the model's inputs are {', '.join(names)}"
            )
        missing = [n for n in names if n not in feeds]
        if missing:
            raise InputError(
                f"missing input {missing[0]!r}; the model's inputs are {', '.join(names)}"
            )
        return {n: np.asarray(feeds[n]) for n in names}

    def _validate(self, feeds: dict[str, np.ndarray]) -> None:
        sizes: dict[str, tuple[int, str]] = {}  # symbolic dim -> (size, input that set it)
        for spec in self.signature.inputs:
            array = feeds[spec.name]
            expected = spec.describe()
            if array.dtype != np.dtype(spec.dtype):
                raise InputError(
                    f"input {spec.name!r} has dtype {array.dtype}, expected {spec.dtype}"
                )
            if array.ndim != len(spec.dims):
                raise InputError(
                    f"input {spec.name!r} has shape {list(array.shape)} (rank {array.ndim}), "
                    f"expected {expected}"
                )
            for axis, (dim, size) in enumerate(zip(spec.dims, array.shape)):
                if isinstance(dim, int) and size != dim:
                    raise InputError(
                        f"input {spec.name!r} has size {size} on axis {axis}, expected {dim} "
                        f"(shape {expected})"
                    )
                if isinstance(dim, str):
                    if size < 1:
                        raise InputError(f"input {spec.name!r} has an empty {dim} axis")
                    seen = sizes.setdefault(dim, (size, spec.name))
                    if seen[0] != size:
                        raise InputError(
                            f"input {spec.name!r} has {dim} size {size} but input {seen[1]!r} "
                            f"has {dim} size {seen[0]}"
                        )
