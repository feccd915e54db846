"""The error hierarchy: every expected failure is an RnnxError, caught once by the CLI."""

from __future__ import annotations

import os
import sys
import warnings


def first_line(error: BaseException, limit: int = 300) -> str:
    """The informative first line of a library's exception (torch, onnxruntime and OpenVINO
    raise multi-line reports), for a one-line RnnxError; the type's name when it has none.
    A TorchScript interpreter's report says what failed on its last line."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    if lines[0].startswith("The following operation failed in the TorchScript interpreter"):
        return lines[-1][:limit]
    return lines[0][:limit]


class RnnxError(Exception):
    """A problem the user can fix; its message is one line naming the file, input or option."""


class CheckpointError(RnnxError):
    """The checkpoint is missing, unreadable, ambiguous or does not match the model."""


class UntrustedCodeError(RnnxError):
    """Opening an artifact would run code from it (a compiled pt2 package) without trust."""


class UnsupportedModelError(RnnxError):
    """The module contains something rnnx cannot export."""


class ExportError(RnnxError):
    """Exporting failed for a supported model (a bug or an environment problem)."""


class InputError(RnnxError):
    """An input given to a model or runtime does not match what it expects."""


class VerificationError(RnnxError):
    """An exported artifact does not compute what eager PyTorch computes."""


class RnnxWarning(UserWarning):
    """An export hazard found by `rnnx doctor` (the export goes on; the user should look)."""


def warn_user(message: str) -> None:
    """An RnnxWarning attributed to the first caller outside rnnx (the user's export call),
    however deep in the exporter it is raised (Python 3.11 has no skip_file_prefixes)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, RnnxWarning, stacklevel=level)


class FallbackWarning(RnnxWarning, RuntimeWarning):
    """A session runs on the CPU because the provider or device asked for is missing and the
    caller allowed falling back (`allow_fallback=True`, `--allow-fallback`)."""
