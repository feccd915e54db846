"""torch.export's failures on model code, said as one line naming the user's file:line and the fix.

torch.export reports a multi-page trace from deep inside its symbolic-shape machinery. The
constructs that cause most failures on published models are few, and each has a known
rewrite, so the error names the line in the user's code that does it and how to change it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import linecache
import logging
import re
import sysconfig
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).resolve().parent if spec and spec.origin else None


# Frames in these are not the user's: torch, the exporters, rnnx itself, the standard library.
_LIBRARIES = [p for p in map(_package_dir, ("torch", "onnxscript", "onnx_ir", "onnx")) if p] + [
    Path(__file__).resolve().parent.parent,
    Path(sysconfig.get_paths()["stdlib"]).resolve(),
]
# "user code" lines torch puts in its messages, when the trace went through dynamo
_USER_FRAME = re.compile(r'File "([^"]+)", line (\d+)')

# (what the message says, what the user's line does, the fix)
_CAUSES = [
    (
        (
            "data-dependent",
            "GuardOnDataDependent",
            "Could not extract specialized integer",
            "item()",
            "unbacked",
        ),
        "turns a tensor value into a Python number or branch (.item(), int(), a Python loop or "
        "if over a tensor), so batch and time cannot stay dynamic there",
        "compute it with tensor ops, e.g. a padding mask as torch.arange(T)[None, :] >= "
        "lengths[:, None], and torch.where for branches",
    ),
    (
        (".numpy()", "numpy() is not supported", "tolist"),
        "moves a tensor to numpy or a Python list, which a graph cannot hold",
        "keep it a tensor (pack_padded_sequence takes lengths as a CPU int64 tensor)",
    ),
    (
        ("as parameter",),
        "assigns a tensor to a module parameter while forward runs (weight drop, weight "
        "norm), which torch.export cannot trace",
        "export a plain layer holding the same weights (in eval mode weight drop changes "
        "nothing), or compute the weights into a local tensor and call the functional kernel",
    ),
]


def explain(error: BaseException, summary: str) -> str | None:
    """A one-line diagnosis of `error` (from torch.export) with the user's file:line, or None
    when the cause is not one of the known constructs."""
    text = "\n".join(str(e) for e in _chain(error))
    for markers, what, fix in _CAUSES:
        if any(marker in text for marker in markers):
            where = _user_line(error)
            at = f"{where[0]}:{where[1]}: `{where[2]}` " if where else "forward "
            return f"{at}{what} ({summary[:160]}); fix: {fix}"
    return None


def _chain(error: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _user_line(error: BaseException) -> tuple[str, int, str] | None:
    """The innermost frame of the failure in the user's code (not torch's, not rnnx's)."""
    found = None
    for failure in _chain(error):
        frames = [(f.filename, f.lineno or 0) for f in traceback.extract_tb(failure.__traceback__)]
        frames += [(m.group(1), int(m.group(2))) for m in _USER_FRAME.finditer(str(failure))]
        for filename, line in frames:
            path = Path(filename)
            if path.suffix == ".py" and not _is_library(path):
                found = (path.name, line, linecache.getline(filename, line).strip())
        if found:
            return found
    return None


def _is_library(path: Path) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(root) for root in _LIBRARIES)


# symbolic_shapes logs every guard it adds with the user's frame: "eval Eq(s41, 8) [guard
# added] (mp/model.py:10 in forward)". A guard equating a size to a number froze that axis.
_GUARD = re.compile(r"Eq\((\w+), (\d+)\) \[guard added\].*?\(([^()]*?):(\d+) in \w+\)")


class GuardLog(logging.Handler):
    """Collects the guards torch.export adds while it traces (kept off the console)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "[guard added]" in message:
            self.messages.append(message)

    def where_fixed(self, size: int, files: Iterable[str]) -> str | None:
        """`file:line `code`` of the first guard that pinned a size to `size`."""
        for message in self.messages:
            match = _GUARD.search(message)
            if match and int(match.group(2)) == size:
                name, line = Path(match.group(3)).name, int(match.group(4))
                source = next((f for f in files if Path(f).name == name), None)
                code = linecache.getline(source, line).strip() if source else ""
                return f"{name}:{line}" + (f" `{code}`" if code else "")
        return None


@contextlib.contextmanager
def guard_log() -> Iterator[GuardLog]:
    logger = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    handler = GuardLog()
    saved = (logger.level, logger.propagate, logger.handlers[:])
    logger.handlers = [handler]  # torch's own console handler would print every guard
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.level, logger.propagate, logger.handlers = saved
