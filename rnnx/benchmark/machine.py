"""The machine's limit: its fp32 matmul rate and read bandwidth, and a layer's floor time."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from rnnx.core.spec import GATES, LayerSpec


@dataclasses.dataclass(frozen=True)
class Machine:
    matmul_gflops: float  # fp32, one thread, 512³: the fastest GEMM in the process
    bandwidth_gbs: dict[int, float]  # bytes touched per pass -> GB/s for reading that many bytes


@functools.cache
def measure_machine() -> Machine:
    """This machine's fp32 matmul rate and read bandwidth at several working-set sizes (once)."""
    import torch

    a = torch.randn(512, 512)
    b = torch.randn(512, 512)
    # The fastest of two GEMMs: torch.mm runs MKL, which takes its AVX2 path on AMD CPUs (116
    # GFLOP/s on this task's EPYC) while oneDNN's RNN kernels and onnxruntime's MLAS use AVX-512
    # there (~250): a floor from torch.mm alone was half the real one.
    seconds = min(_best(lambda: torch.mm(a, b), 20), _best(_mlas_matmul(a.numpy(), b.numpy()), 20))
    gflops = 2 * 512**3 / seconds / 1e9
    bandwidth = {}
    for size in (1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 26):
        buffer = torch.ones(size // 4)
        bandwidth[size] = size / _best(lambda buffer=buffer: buffer.sum(), 10) / 1e9
    return Machine(gflops, bandwidth)


def _mlas_matmul(a: np.ndarray, b: np.ndarray) -> Callable[[], Any]:
    """onnxruntime's MatMul (MLAS) of a @ b on one thread."""
    import onnxruntime
    from onnx import TensorProto, helper

    tensors = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n in "abc"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
                              tensors[:2], tensors[2:])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return lambda: session.run(None, {"a": a, "b": b})


def _best(function: Callable[[], Any], repeats: int) -> float:
    function()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - t0)
    return best


def layer_cost(spec: LayerSpec, batch: int, steps: int) -> tuple[float, float]:
    """(FLOPs, bytes of recurrent weights and states read per time step) of a bare layer."""
    gates = GATES[spec.kind] * spec.hidden_size
    flops = 0.0
    recurrent_bytes = 0.0
    for layer in range(spec.num_layers):
        layer_input = spec.input_size if layer == 0 else spec.output_size * spec.num_directions
        per_direction = 2 * batch * gates * (layer_input + spec.output_size)
        per_direction += 2 * batch * spec.proj_size * spec.hidden_size
        flops += per_direction * spec.num_directions * steps
        weights = gates * spec.output_size + spec.proj_size * spec.hidden_size
        state = batch * (spec.hidden_size + spec.output_size)
        recurrent_bytes += 4 * (weights + state) * spec.num_directions
    return flops, recurrent_bytes


def floor_ms(spec: LayerSpec, batch: int, steps: int, machine: Machine) -> float:
    flops, per_step_bytes = layer_cost(spec, batch, steps)
    compute = flops / (machine.matmul_gflops * 1e9)
    # The recurrent weights must be read every step; their bandwidth is that of a working set
    # of their size (cache-resident for small layers, memory for large ones).
    size = min(machine.bandwidth_gbs, key=lambda s: abs(np.log(s / max(per_step_bytes, 1))))
    memory = steps * per_step_bytes / (machine.bandwidth_gbs[size] * 1e9)
    return max(compute, memory) * 1e3
