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
from typing import Any


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).resolve().parent if spec and spec.origin else None


# Frames in these are not the user's: torch, the exporters, rnnx itself, the standard library.
_INFRASTRUCTURE = ("torch", "onnxscript", "onnx_ir", "onnx", "sympy", "numpy", "_pytest", "pluggy")
_LIBRARIES = [p for p in map(_package_dir, _INFRASTRUCTURE) if p] + [
    Path(__file__).resolve().parent.parent,
    Path(sysconfig.get_paths()["stdlib"]).resolve(),
]
# "user code" lines torch puts in its messages, when the trace went through dynamo
_USER_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
# and the frames a traced TorchScript module quotes when it fails: "/path/model.py(11): forward"
_SCRIPT_FRAME = re.compile(r"^(\S+\.py)\((\d+)\): \S+$", re.MULTILINE)

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
        ("__array__ method not producing an array", "__array_ufunc__", "__array_function__"),
        "does numpy arithmetic on a tensor moved to the host (.cpu().numpy()), which a graph "
        "cannot hold",
        "do it with torch ops on the tensor, e.g. torch.ceil(lengths / 2).long() for "
        "np.ceil(lengths / 2)",
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


def explain(
    error: BaseException, summary: str, guards: GuardLog | None = None, what: str = "torch.export"
) -> str:
    """A one-line diagnosis of `error` (from `what`) with the user's file:line: the innermost
    frame of the user's code in its traceback, else the user's line of the last symbolic
    decision in `guards` (for errors torch raises later, in its own passes); the fix when
    the cause is one of the known constructs."""
    text = "\n".join(str(e) for e in _chain(error))
    where = _user_line(error) or (guards.last_user_line() if guards else None)
    at = f"{where[0]}:{where[1]}: `{where[2]}` " if where else ""
    for markers, does, fix in _CAUSES:
        if any(marker in text for marker in markers):
            return f"{at or 'forward '}{does} ({summary[:160]}); fix: {fix}"
    if at:
        return f"{at}stops {what}: {summary}"
    return f"{what} failed: {summary}"


def _chain(error: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _user_line(error: BaseException) -> tuple[str, int, str] | None:
    """The innermost frame of the failure in the user's code (not torch's, not rnnx's)."""
    for failure in _chain(error):
        text = str(failure)
        frames = [(f.filename, f.lineno or 0) for f in traceback.extract_tb(failure.__traceback__)]
        frames += [(m.group(1), int(m.group(2))) for m in _USER_FRAME.finditer(text)]
        # the TorchScript interpreter quotes the traced code innermost first
        quoted = [(m.group(1), int(m.group(2))) for m in _SCRIPT_FRAME.finditer(text)]
        frames += quoted[::-1]
        found = _innermost_user_frame(frames)
        if found:
            return found
    return None


def _innermost_user_frame(frames: Iterable[Any]) -> tuple[str, int, str] | None:
    """(file name, line, code) of the last frame in the user's code, from (file, line) pairs
    or traceback.FrameSummary objects."""
    found = None
    for frame in frames:
        named = hasattr(frame, "filename")
        filename, line = (frame.filename, frame.lineno or 0) if named else frame
        path = Path(filename)
        if path.suffix == ".py" and not _is_library(path):
            found = (path.name, line, linecache.getline(filename, line).strip())
    return found


def user_frame(error: BaseException) -> str | None:
    """`file:line` of the innermost frame of the user's code in `error`'s traceback (or in the
    frames torch quotes in its message), None when there is none."""
    where = _user_line(error)
    return f"{where[0]}:{where[1]}" if where else None


def raised_at(error: BaseException) -> str:
    """ "AssertionError at model.py:12": what a model raised and where in the user's code."""
    where = user_frame(error)
    return f"{type(error).__name__} at {where}" if where else type(error).__name__


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
        # the user's line at each symbolic decision (a guard, an unbacked size): torch logs
        # its own frame, but while it logs the user's code is on the stack (non-strict export)
        self.user_lines: list[tuple[str, int, str]] = []
        self.guard_lines: list[tuple[str, int, str] | None] = []  # per message
        self.depth = len(traceback.extract_stack())  # the stack's depth where capture starts

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "[guard added]" in message or "create_unbacked" in message:
            # only the frames below the capture call: the caller's own are not the cause
            where = _innermost_user_frame(traceback.extract_stack()[self.depth :])
            if "[guard added]" in message:
                self.messages.append(message)
                self.guard_lines.append(where)
            if where and where not in self.user_lines[-1:]:
                self.user_lines.append(where)

    def last_user_line(self) -> tuple[str, int, str] | None:
        """The user's line of the last symbolic decision torch logged (where capture was when
        it went wrong, for failures raised later, in torch's own passes)."""
        return self.user_lines[-1] if self.user_lines else None

    def where_fixed(self, size: int, files: Iterable[str]) -> str | None:
        """`file:line `code`` of the first guard that pinned a size to `size`."""
        for message in self.messages:
            match = _GUARD.search(message)
            if match and int(match.group(2)) == size:
                name, line = Path(match.group(3)).name, int(match.group(4))
                source = next((f for f in files if Path(f).name == name), None)
                if source is None:  # a frame of torch's (nn.Module's call), not the model's
                    continue
                code = linecache.getline(source, line).strip()
                return f"{name}:{line}" + (f" `{code}`" if code else "")
        # A guard through arithmetic (Eq(IntTrueDiv(3*s53, 2), 9.0)): torch names its own
        # frame, the stack when it was logged names the user's.
        pinned = re.compile(rf"\bEq\(.*, {size}(\.0)?\) \[guard added\]")
        for message, where in zip(self.messages, self.guard_lines):
            if where and pinned.search(message):
                return f"{where[0]}:{where[1]} `{where[2]}`"
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
