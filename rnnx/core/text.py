"""Text from artifacts on its way to a terminal: control characters escaped, long values cut.

An export is untrusted input: an ONNX producer name or metadata value holding an OSC escape
sequence would otherwise retitle the terminal, rewrite what is on screen, or worse, and a
100 MiB metadata value would be printed whole.
"""

from __future__ import annotations

import unicodedata
from typing import Any

LIMIT = 200  # characters of one value in a table or an error line
# control, format (bidi overrides, zero-width), surrogate, line and paragraph separators
_HIDDEN = ("Cc", "Cf", "Cs", "Zl", "Zp")


def terminal_safe(value: Any, limit: int | None = LIMIT) -> str:
    """str(value) with every control or format character (C0, DEL, C1, bidi overrides...)
    written as \\xNN / \\uNNNN, cut to `limit` characters with a note of how long it was."""
    text = str(value)
    cut = limit is not None and len(text) > limit
    shown = text[:limit] if cut else text
    escaped = "".join(_escape(c) if unicodedata.category(c) in _HIDDEN else c for c in shown)
    return f"{escaped}... ({len(text)} characters)" if cut else escaped


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def cut_strings(value: Any, limit: int) -> Any:
    """`value` (JSON-like) with every string longer than `limit` cut, for machine-readable
    output that must not carry a 100 MiB value either."""
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}... ({len(value)} characters)"
    if isinstance(value, dict):
        return {cut_strings(k, limit): cut_strings(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [cut_strings(v, limit) for v in value]
    return value
