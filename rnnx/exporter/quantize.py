"""int8 dynamic quantization of an exported ONNX model, with onnxruntime's own quantizer.

onnxruntime's quantize_dynamic turns LSTM nodes into DynamicQuantizeLSTM and MatMuls into
integer MatMuls (fused into DynamicQuantizeMatMul when onnxruntime loads the model), in Scan
bodies too when subgraphs are enabled; it has no GRU or RNN support. So the fp32 graph is first
rewritten by int8_lowering.py: GRU and RNN nodes become an input projection MatMul and a Scan
cell with a recurrent MatMul, and the projected LSTM's Scan cell gets MatMuls for its Gemm. Then
every recurrence and every input projection runs in int8, and the gate arithmetic in fp32.
Activations are uint8 with one scale per call.

Two weight schemes, because onnxruntime's int8 GEMM is not the same computation on every x86
CPU: with u8 activations × s8 weights, CPUs without VNNI (AVX2-only) multiply with vpmaddubsw,
whose 16-bit pair sums saturate once |w1|+|w2| > 128 (full-range s8 weights reach 254), while
VNNI CPUs accumulate in 32 bits. Measured on 2-layer 256-wide layers over the verifier's cases
(benchmarks/int8_isa.py; AVX2 through qemu-user presenting a Haswell CPU to the same wheel):
full-range s8 errs by 0.15-0.63 on AVX2 and 0.006-0.022 with VNNI.
  - "portable" (onnx-int8): MatMul weights u8, one scale per output channel (u8×u8 has no
    saturating kernel anywhere), and the LSTM's weights s8 with 7 bits (reduce_range: the
    quantizer gives DynamicQuantizeLSTM s8 weights only; |w| <= 64 keeps every pair sum <= 128).
    Bit-identical outputs on both classes: max abs error 0.0050 (projected LSTM) to 0.0227
    (bidirectional LSTM) over the verifier's cases. Per-tensor u8 weights gave 0.0222 on the
    tanh RNN, over the int8 tolerance; per-channel 7-bit s8 everywhere 0.031.
  - "vnni" (onnx-int8-vnni): full-range s8 weights, one scale per tensor, as fast as
    onnxruntime's int8 gets on VNNI CPUs (the u8×u8 kernels take up to twice as long on large
    MatMuls: projected LSTM 1024->256, 9 vs 16 ms at 1 × 100), and wrong without VNNI: it
    refuses to load on such a CPU (formats.py, Format.cpu_flags).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx

from rnnx.exporter.int8_lowering import lower_for_int8
from rnnx.exporter.plan import FormatSkipped, WriteJob

QUANTIZED_OPS = {"DynamicQuantizeLSTM", "MatMulInteger", "DynamicQuantizeMatMul", "QLinearMatMul"}


@dataclasses.dataclass(frozen=True)
class Int8Scheme:
    name: str
    matmul_weights: str  # "uint8" or "int8"
    matmul_per_channel: bool
    lstm_reduce_range: bool  # 7-bit s8 weights for DynamicQuantizeLSTM
    needs_vnni: bool  # correct only where onnxruntime's int8 GEMM has VNNI

    def describe(self) -> dict[str, Any]:
        """The scheme as the manifest records it."""
        return {
            "scheme": self.name,
            "activations": "uint8, one scale per call",
            "matmul_weights": f"{self.matmul_weights}, one scale per "
            + ("output channel" if self.matmul_per_channel else "tensor"),
            "lstm_weights": "int8, " + ("7 bits" if self.lstm_reduce_range else "8 bits")
            + ", one scale per tensor",
            "cpu": "needs VNNI (avx512_vnni or avx_vnni)" if self.needs_vnni else "any x86-64",
        }  # fmt: skip


SCHEMES = {
    "portable": Int8Scheme("portable", "uint8", True, True, needs_vnni=False),
    "vnni": Int8Scheme("vnni", "int8", False, False, needs_vnni=True),
}


def quantize_int8(
    source: str | os.PathLike, target: str | os.PathLike, scheme: str = "portable"
) -> dict[str, int]:
    """Write a dynamically quantized copy of `source`; returns the count of quantized ops
    (those inside Scan/Loop bodies counted once per body)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    chosen = SCHEMES[scheme]
    weight_type = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[chosen.matmul_weights]
    lowered, reading_inputs = lower_for_int8(onnx.load(os.fspath(source)))
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # the quantizer logs a line per node it skips
    common = dict(
        nodes_to_exclude=reading_inputs, extra_options={"EnableSubgraph": True}
    )  # the Scan cells' recurrent MatMuls
    with tempfile.TemporaryDirectory(prefix="rnnx-int8-") as work:
        staged = Path(work) / "lowered.onnx"
        lstm_done = Path(work) / "lstm.onnx"
        onnx.save_model(lowered, os.fspath(staged))
        try:
            # Two passes: the LSTM's weights and the MatMuls' take different schemes.
            quantize_dynamic(staged, lstm_done, op_types_to_quantize=["LSTM"],
                             weight_type=QuantType.QInt8, reduce_range=chosen.lstm_reduce_range,
                             **common)  # fmt: skip
            quantize_dynamic(lstm_done, Path(target), op_types_to_quantize=["MatMul"],
                             weight_type=weight_type, per_channel=chosen.matmul_per_channel,
                             **common)  # fmt: skip
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
    """The `onnx-int8` format's writer: the portable scheme, from the `onnx` artifact."""
    return _write(job, path, "portable")


def write_int8_vnni(job: WriteJob, path: Path) -> dict[str, object]:
    """The `onnx-int8-vnni` format's writer: full-range s8 weights, for VNNI CPUs only."""
    return _write(job, path, "vnni")


def _write(job: WriteJob, path: Path, scheme: str) -> dict[str, object]:
    ops = quantize_int8(job.written["onnx"], path, scheme)
    if not ops:
        path.unlink()
        raise FormatSkipped(
            "nothing to quantize: no MatMul, LSTM, or GRU/RNN without packed sequences (those "
            "stay fp32)"
        )
    return {"quantized_ops": ops, **SCHEMES[scheme].describe()}
