"""Third-party warnings that say nothing about the user's model, silenced where they arise.

Filtered by message, around the calls that emit them, never for the whole process: a warning
from torch, onnxscript or onnxruntime that is about the user's model still reaches the user,
and rnnx's own RnnxWarning always does.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

# torch (aten/src/ATen/native/RNN.cpp) warns once per process, on the first forward of an
# nn.LSTM with proj_size on the CPU, that oneDNN has no projected-LSTM kernel and it "uses the
# default implementation": a fact about torch's kernels, not about the model (eager, the
# verification and every runtime compute the same thing either way).
_TORCH_KERNEL_NOTICES = (r"LSTM with projections is not supported with oneDNN",)


@contextlib.contextmanager
def torch_kernel_notices() -> Iterator[None]:
    """Run a torch forward without torch's notices about which CPU kernel it picked."""
    with warnings.catch_warnings():
        for message in _TORCH_KERNEL_NOTICES:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield
