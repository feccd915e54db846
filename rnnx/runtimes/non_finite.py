"""NaN in, NaN out: what eager PyTorch does, and what onnxruntime's CPU LSTM/GRU kernels do not.

onnxruntime (1.32, CPU) turns a NaN in the input of an LSTM or GRU node that has a bias input
into finite outputs and states (tests/runtimes/test_non_finite.py shows it on a one-node
graph), so a corrupted feature frame would pass silently. A session whose graph has such
kernels checks its float inputs: with non_finite="propagate" (the default) every sequence
whose inputs or states hold a NaN gets NaN outputs and states, whole (eager PyTorch has NaN
from that step on); with "error" any NaN or infinity in an input is an InputError naming it.
Infinities are left to the kernels: they give finite results there and in eager PyTorch alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnnx.core.errors import InputError, RnnxError
from rnnx.core.signature import Signature

POLICIES = ("propagate", "error", "ignore")  # ignore: what the kernels do, at no cost
# Kernels that hide a NaN input (the int8 format's LSTM included; RNN with ReLU: max(0, NaN)
# is 0 there), and IsNaN: the int8 format zeroes NaN inputs before its dynamic quantization,
# whose one scale per tensor would carry a sequence's NaN to the whole batch
# (exporter/int8_lowering.py).
MASKING_OPS = frozenset({"LSTM", "GRU", "RNN", "DynamicQuantizeLSTM", "IsNaN"})


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise RnnxError(f"non_finite must be one of {', '.join(POLICIES)}, got {policy!r}")
    return policy


def refuse_non_finite(feeds: Mapping[str, np.ndarray]) -> None:
    """non_finite="error": the first input holding NaN or infinity, named."""
    for name, array in feeds.items():
        if _is_float(array) and not np.isfinite(array).all():
            raise InputError(f"input {name!r} holds NaN or infinity (non_finite='error')")


def nan_sequences(signature: Signature, feeds: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """Which sequences of the batch have a NaN in an input or state; None when none has.

    An input without a batch axis (or with a flattened one) counts for the whole batch."""
    mask = None
    for name, array in feeds.items():
        # The dot product of the values with themselves is NaN exactly when one of them is
        # (squares are never negative: infinities and overflow give inf, not NaN): one BLAS
        # pass and no allocation on the hot path of every stream step (faster than a sum).
        flat = array.reshape(-1)
        if array.dtype.kind != "f" or not math.isnan(np.dot(flat, flat)):
            continue
        dims = list(signature.input(name).dims)
        if "batch" in dims:
            axis = dims.index("batch")
            hit = np.isnan(array).any(axis=tuple(i for i in range(array.ndim) if i != axis))
        else:
            hit = np.array([True])
        mask = hit if mask is None else (mask | hit)
    return mask


def poison(
    signature: Signature, outputs: Mapping[str, np.ndarray], mask: np.ndarray
) -> dict[str, np.ndarray]:
    """NaN for the masked sequences, in every float output (states included)."""
    result = {}
    for name, array in outputs.items():
        array = np.array(array)
        dims = list(signature.output(name).dims)
        if not _is_float(array):
            pass
        elif "batch" in dims and len(mask) == array.shape[dims.index("batch")]:
            index = [slice(None)] * array.ndim
            index[dims.index("batch")] = mask
            array[tuple(index)] = np.nan
        elif mask.any():
            array[...] = np.nan
        result[name] = array
    return result


def _is_float(array: np.ndarray) -> bool:
    return np.issubdtype(np.asarray(array).dtype, np.floating)


def graph_hides_nan(path: Any) -> bool:
    """Whether an ONNX graph has kernels that turn a NaN input into finite numbers (in
    onnxruntime's and OpenVINO's CPU implementations alike)."""
    import os

    import onnx

    graph = onnx.load(os.fspath(path), load_external_data=False).graph
    return any(node.op_type in MASKING_OPS for node in graph.node)
