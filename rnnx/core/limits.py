"""Bounds on values that come from an export (manifest, tuned records, metadata, array files)
or from a command line, checked before they reach a runtime or an allocation."""

from __future__ import annotations

from typing import Any

from rnnx.core.errors import RnnxError

MAX_THREADS = 1024  # intra/inter-op threads: more is a typo or a hostile manifest
# Elements of one tensor rnnx allocates itself (random inputs, zero states, .npy data): 2**31
# float32 values are 8 GiB, far beyond any recurrent model's tensor.
MAX_ELEMENTS = 2**31
MAX_DIM = 2**31 - 1  # a fixed dimension in a signature (int32, as ONNX runtimes index)


def shown(value: Any, limit: int = 40) -> str:
    """repr(value), cut to `limit` characters (a value from a file may be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_count(value: Any, maximum: int, minimum: int = 1) -> bool:
    """An int (not a bool, not a float) in [minimum, maximum]."""
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum


def check_threads(value: Any, field: str) -> int:
    """A thread count in 1..MAX_THREADS; RnnxError naming `field` otherwise."""
    if not is_count(value, MAX_THREADS):
        raise RnnxError(f"{field} must be an integer from 1 to {MAX_THREADS}, got {shown(value)}")
    return value


def check_elements(shape: tuple[int, ...], what: str) -> None:
    """Refuse a shape whose element count exceeds MAX_ELEMENTS (before allocating it)."""
    count = 1
    for size in shape:
        count *= size
    if count > MAX_ELEMENTS:
        raise RnnxError(
            f"{what} has shape {list(shape)} ({count} elements), more than rnnx allocates "
            f"({MAX_ELEMENTS})"
        )
