"""Third-party warnings that say nothing about the user's model, silenced where they arise.

Filtered by message, around the calls that emit them, never for the whole process: a warning
from torch, onnxscript or onnxruntime that is about the user's model still reaches the user,
and rnnx's own RnnxWarning always does.
"""

from __future__ import annotations

import contextlib
import logging
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


# Loggers of libraries whose import or capture logs what is not about the user's model:
# torch.export and Inductor (a fallback kernel per recurrent op, by design), and, on importing
# ExecuTorch, torchao (CUDA extensions it cannot load on a CPU machine) and torch's pytree (a
# deprecation about torchao's enums).
CAPTURE_LOGGERS = ("torch.export", "torch._export", "torch._dynamo", "torch._inductor", "torch.fx",
                   "torchao", "torch.utils._pytree")  # fmt: skip


@contextlib.contextmanager
def third_party_logs(names: tuple[str, ...] = CAPTURE_LOGGERS) -> Iterator[None]:
    """Run with these loggers silenced and warnings ignored: a failure inside still reaches
    the user, as rnnx's one-line error."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
