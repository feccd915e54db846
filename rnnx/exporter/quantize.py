"""int8 dynamic quantization of an exported ONNX model, with onnxruntime's own quantizer.

onnxruntime's quantize_dynamic turns LSTM nodes into DynamicQuantizeLSTM and MatMuls into
integer MatMuls (fused into DynamicQuantizeMatMul when onnxruntime loads the model), in Scan
bodies too when subgraphs are enabled; it has no GRU or RNN support. So the fp32 graph is first
rewritten by int8_lowering.py: GRU and RNN nodes become an input projection MatMul and a Scan
cell with a recurrent MatMul, and the projected LSTM's Scan cell gets MatMuls for its Gemm. Then
every recurrence and every input projection runs in int8, and the gate arithmetic in fp32.
Weights are int8, one scale per tensor (per channel measured slower by a third per step at
batch 1 and no more accurate on these layers); activations uint8, one scale per call.
"""

from __future__ import annotations

import collections
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import onnx

from rnnx.exporter.int8_lowering import lower_for_int8
from rnnx.exporter.plan import FormatSkipped, WriteJob

QUANTIZED_OPS = {"DynamicQuantizeLSTM", "MatMulInteger", "DynamicQuantizeMatMul", "QLinearMatMul"}


def quantize_int8(source: str | os.PathLike, target: str | os.PathLike) -> dict[str, int]:
    """Write a dynamically quantized copy of `source`; returns the count of quantized ops
    (those inside Scan/Loop bodies counted once per body)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    lowered, reading_inputs = lower_for_int8(onnx.load(os.fspath(source)))
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # the quantizer logs a line per node it skips
    with tempfile.TemporaryDirectory(prefix="rnnx-int8-") as work:
        staged = Path(work) / "lowered.onnx"
        onnx.save_model(lowered, os.fspath(staged))
        try:
            quantize_dynamic(
                staged,
                Path(target),
                nodes_to_exclude=reading_inputs,
                weight_type=QuantType.QInt8,
                extra_options={"EnableSubgraph": True},  # the Scan cells' recurrent MatMuls
            )
        finally:
            logger.setLevel(level)
    ops = collections.Counter(node.op_type for node in _nodes(onnx.load(os.fspath(target)).graph))
    return {op: count for op, count in ops.items() if op in QUANTIZED_OPS}


def _nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _nodes(attribute.g)


def write_int8(job: WriteJob, path: Path) -> dict[str, object]:
    """The `onnx-int8` format's writer: quantizes the `onnx` artifact written before it."""
    ops = quantize_int8(job.written["onnx"], path)
    if not ops:
        path.unlink()
        raise FormatSkipped(
            "nothing to quantize: no MatMul, LSTM, or GRU/RNN without packed sequences (those "
            "stay fp32)"
        )
    return {"quantized_ops": ops}
