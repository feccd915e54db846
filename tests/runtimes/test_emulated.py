"""onnxruntime under qemu-user presenting an AVX2-only CPU: the lower class on any x86-64 host.

onnxruntime chooses its kernels from CPUID and has no cap of its own, so these tests are how
the AVX2 class is exercised on an AVX-512 machine (and they run the same on an AVX2 one). The
set-up commands install qemu-user; without it (or off x86-64) they skip, saying so.
"""

from __future__ import annotations

import platform
import shutil

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import rnnx
from rnnx.core.errors import RnnxError, RnnxWarning
from rnnx.core.machine import has_vnni, this_machine
from rnnx.inspect import inspect
from rnnx.pipeline import ExportOptions, export
from rnnx.runtimes.emulated import QEMU, EmulatedInferenceSession

pytestmark = pytest.mark.skipif(
    shutil.which(QEMU) is None or platform.machine() != "x86_64",
    reason=f"needs {QEMU} on x86-64 (the set-up commands install qemu-user)",
)

# one row per layer kind, tiny sizes: (name, layer)
ROWS = {
    "rnn_tanh-bidirectional": lambda: nn.RNN(5, 8, 2, bidirectional=True, batch_first=True),
    "rnn_relu": lambda: nn.RNN(5, 8, 2, nonlinearity="relu"),
    "gru": lambda: nn.GRU(5, 8, 2),
    "lstm": lambda: nn.LSTM(5, 8, 2),
    "lstm-proj": lambda: nn.LSTM(5, 8, 1, proj_size=4),
}


@pytest.fixture(scope="module")
def int8_exports(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("emulated")
    exports = {}
    for name, make in ROWS.items():
        torch.manual_seed(0)
        layer = make().eval()
        export(layer, root / name, ExportOptions(formats=("onnx",), quantize="int8"))
        exports[name] = (root / name, layer)
    return exports


@pytest.mark.upstream
def test_the_emulated_cpu_takes_the_saturating_int8_kernel(tmp_path) -> None:
    """Why the emulation exists: under it onnxruntime's u8×s8 GEMM sums pairs of products in 16
    bits, as on an AVX2-only CPU. Full-range int8 weights at the top of their range, against
    inputs at the top of theirs, saturate there (VNNI CPUs compute these exactly)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights = np.ones((64, 4), np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(weights, "w")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "fp32.onnx")
    quantize_dynamic(tmp_path / "fp32.onnx", tmp_path / "s8.onnx", weight_type=QuantType.QInt8)
    x = np.ones((1, 64), np.float32)
    x[0, 0] = -1.0  # the activation range [-1, 1]: ones quantize to 255
    exact = x @ weights  # 62 in every column
    session = EmulatedInferenceSession(tmp_path / "s8.onnx", "avx2", {"threads": 1})
    try:
        emulated = session.run(["y"], {"x": x})[0]
    finally:
        session.close()
    # each pair 255·127 + 255·127 = 64770 saturates to 32767: about half the true sum
    assert np.abs(emulated - exact).max() > 20


@pytest.mark.parametrize("name", list(ROWS))
def test_int8_verifies_on_the_avx2_class(int8_exports, name) -> None:
    """The portable scheme (u8 MatMul weights, 7-bit LSTM weights) never saturates: every layer
    kind passes verification on the emulated AVX2 CPU, with the numbers of this host."""
    directory, layer = int8_exports[name]
    report = rnnx.verify(directory, layer, format="onnx-int8", emulate_cpu="avx2", record=True)
    assert report.passed, report.first_failure()
    assert report.machine["cpu_class"] == "avx2" and report.machine["emulated"]
    recorded = rnnx.load(directory, "eager", reference=layer)  # the manifest was rewritten
    assert recorded.signature is not None
    last = inspect(directory).verification["verified_on"][-1]
    assert last["cpu_class"] == "avx2" and last["artifacts"] == ["onnxruntime:onnx-int8"]
    # the same int8 arithmetic on both classes: the host's outputs, to float rounding
    session = rnnx.load(directory, format="onnx-int8")
    emulated = rnnx.load(directory, format="onnx-int8", emulate_cpu="avx2")
    feeds = {"input": np.random.default_rng(1).standard_normal(
        (3, 9, 5) if layer.batch_first else (9, 3, 5)).astype(np.float32)}  # fmt: skip
    here, there = session.run(feeds), emulated.run(feeds)
    for output in here:
        np.testing.assert_allclose(there[output], here[output], atol=1e-5)


def test_vnni_int8_is_refused_on_the_avx2_class(tmp_path) -> None:
    if not has_vnni(this_machine()):
        pytest.skip("this CPU has no VNNI: the refusal is tested in tests/exporter/test_int8.py")
    torch.manual_seed(0)
    layer = nn.GRU(5, 8).eval()
    export(layer, tmp_path / "e", ExportOptions(formats=("onnx",), quantize="int8,int8-vnni"))
    with pytest.raises(RnnxError, match="onnx-int8-vnni needs a CPU with avx512_vnni or avx_vnni "
                       r"\(this one is avx2\)"):  # fmt: skip
        rnnx.verify(tmp_path / "e", layer, format="onnx-int8-vnni", emulate_cpu="avx2")
    with pytest.warns(RnnxWarning, match="onnx-int8-vnni needs a CPU"):
        report = rnnx.verify(tmp_path / "e", layer, emulate_cpu="avx2")
    assert report.passed_labels() == ["onnxruntime:onnx", "onnxruntime:onnx-int8"]
