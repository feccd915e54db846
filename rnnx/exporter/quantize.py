"""int8 dynamic quantization of an exported ONNX model, with onnxruntime's own quantizer.

onnxruntime's quantize_dynamic turns LSTM nodes into DynamicQuantizeLSTM and MatMuls into
MatMulInteger; it has no GRU or RNN support. So a GRU/RNN layer alone has nothing to quantize
(no int8 artifact is written, and the caller is told why); a projected LSTM gets its input-gate
MatMul quantized, while the recurrence inside the Scan body stays fp32.
"""

from __future__ import annotations

import collections
import logging
import os
from pathlib import Path

import onnx

from rnnx.exporter.plan import FormatSkipped, WriteJob

QUANTIZED_OPS = {"DynamicQuantizeLSTM", "MatMulInteger", "DynamicQuantizeMatMul", "QLinearMatMul"}


def quantize_int8(source: str | os.PathLike, target: str | os.PathLike) -> dict[str, int]:
    """Write a dynamically quantized copy of `source`; returns the count of quantized ops."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # the quantizer logs a line per node it skips
    try:
        quantize_dynamic(Path(source), Path(target), weight_type=QuantType.QInt8)
    finally:
        logger.setLevel(level)
    ops = collections.Counter(node.op_type for node in onnx.load(os.fspath(target)).graph.node)
    return {op: count for op, count in ops.items() if op in QUANTIZED_OPS}


def write_int8(job: WriteJob, path: Path) -> dict[str, object]:
    """The `onnx-int8` format's writer: quantizes the `onnx` artifact written before it."""
    ops = quantize_int8(job.written["onnx"], path)
    if not ops:
        path.unlink()
        raise FormatSkipped("nothing to quantize: onnxruntime's quantizer has no GRU/RNN support")
    return {"quantized_ops": ops}
