"""One protocol over onnxruntime, TorchScript and eager; clear errors before any backend runs."""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch

import rnnx
from rnnx.core.errors import InputError, RnnxError

RUNTIMES = ("onnxruntime", "torchscript", "eager")
HAS_CUDA_EP = "CUDAExecutionProvider" in ort.get_available_providers()


def feeds_for(batch: int = 3, time: int = 9, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "input": rng.standard_normal((batch, time, 40), dtype=np.float32),
        "h0": rng.standard_normal((2, batch, 64), dtype=np.float32),
        "c0": rng.standard_normal((2, batch, 64), dtype=np.float32),
    }


def test_zoo_model_matches_through_every_runtime(exported) -> None:
    module, directory = exported["keyword_spotter"]
    feeds = feeds_for()
    with torch.no_grad():
        tensors = {k: torch.from_numpy(v) for k, v in feeds.items()}
        out, (h, c) = module(tensors["input"], (tensors["h0"], tensors["c0"]))
    expected = {"output": out.numpy(), "h_n": h.numpy(), "c_n": c.numpy()}
    for runtime in RUNTIMES:
        session = rnnx.load(directory, runtime, reference=module if runtime == "eager" else None)
        for outputs in (
            session.run(feeds),
            session.run([feeds["input"], feeds["h0"], feeds["c0"]]),
        ):
            assert list(outputs) == ["output", "h_n", "c_n"]
            for name, wanted in expected.items():
                np.testing.assert_allclose(
                    outputs[name], wanted, atol=1e-5, rtol=1e-4, err_msg=runtime
                )


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda f: {**f, "input": f["input"].astype(np.float64)},
            "dtype float64, expected float32",
        ),
        (lambda f: {**f, "input": f["input"][0]}, "rank 2"),
        (lambda f: {**f, "input": f["input"][..., :39]}, "size 39 on axis 2, expected 40"),
        (lambda f: {**f, "h0": f["h0"][:, :2]}, "batch size 2 but 'input' has batch size 3"),
        (lambda f: {**f, "hidden": f["h0"]}, "unknown input 'hidden'"),
        (lambda f: {k: v for k, v in f.items() if k != "input"}, "missing input 'input'"),
    ],
    ids=["dtype", "rank", "feature", "state-batch", "unknown-name", "missing"],
)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_bad_inputs_fail_the_same_way_everywhere(exported, runtime, change, message) -> None:
    module, directory = exported["keyword_spotter"]
    session = rnnx.load(directory, runtime, reference=module if runtime == "eager" else None)
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        session.run(change(feeds_for()))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_states_left_out_start_at_zero(exported, runtime) -> None:
    """One policy for a missing state input: Session.run, `rnnx run` and C++ Model::run."""
    module, directory = exported["keyword_spotter"]
    session = rnnx.load(directory, runtime, reference=module if runtime == "eager" else None)
    feeds = feeds_for()
    zero = {k: np.zeros_like(v) if k != "input" else v for k, v in feeds.items()}
    without_c0 = {k: v for k, v in zero.items() if k != "c0"}
    only_input = {"input": feeds["input"]}
    expected = session.run(zero)
    for partial in (without_c0, only_input, [feeds["input"]]):
        for name, array in session.run(partial).items():
            np.testing.assert_array_equal(array, expected[name])


def test_unknown_provider_lists_the_available_ones(exported) -> None:
    _, directory = exported["gru"]
    with pytest.raises(RnnxError, match="provider 'nonesuch'.*available: .*CPUExecutionProvider"):
        rnnx.load(directory, provider="nonesuch")
    with pytest.raises(RnnxError, match="unknown runtime"):
        rnnx.load(directory, "tvm")


@pytest.mark.skipif(HAS_CUDA_EP, reason="this machine has the CUDA provider")
def test_cuda_here_is_a_clear_error_or_a_warned_fallback(exported) -> None:
    _, directory = exported["gru"]
    with pytest.raises(RnnxError, match="'cuda'.*CUDAExecutionProvider.*not available"):
        rnnx.load(directory, provider="cuda")
    with pytest.warns(RuntimeWarning, match="running on CPUExecutionProvider"):
        session = rnnx.load(directory, provider="cuda:0", allow_fallback=True)
    assert session.providers == ["CPUExecutionProvider"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_torch_cuda_here_is_a_clear_error_or_a_warned_fallback(exported) -> None:
    _, directory = exported["gru"]
    with pytest.raises(RnnxError, match="sees no CUDA device"):
        rnnx.load(directory, "torchscript", provider="cuda")
    with pytest.warns(RuntimeWarning, match="running on cpu"):
        session = rnnx.load(directory, "torchscript", provider="cuda:1", allow_fallback=True)
    assert session.providers == ["cpu"]


@pytest.mark.skipif(not HAS_CUDA_EP, reason="needs onnxruntime-gpu with a CUDA device")
@pytest.mark.parametrize("runtime", ["onnxruntime", "torchscript"])
def test_cuda_matches_cpu_and_streams_on_device(exported, runtime) -> None:
    _, directory = exported["keyword_spotter"]
    provider = "cuda:0"
    cpu = rnnx.load(directory, runtime).run(feeds_for())
    session = rnnx.load(directory, runtime, provider=provider)
    assert "cpu" not in session.providers[0].lower()
    for name, value in session.run(feeds_for()).items():
        np.testing.assert_allclose(value, cpu[name], atol=1e-4, rtol=1e-3)
    stream = session.stream(batch=3)
    stream.set_state({"h0": feeds_for()["h0"], "c0": feeds_for()["c0"]})
    stream.step(feeds_for()["input"])
    np.testing.assert_allclose(stream.state["h0"], cpu["h_n"], atol=1e-4, rtol=1e-3)


def test_onnxruntime_session_options(exported, tmp_path) -> None:
    _, directory = exported["gru"]
    optimized = tmp_path / "optimized.onnx"
    session = rnnx.load(directory, threads=1, inter_op_threads=1, graph_optimization="basic",
                        optimized_model_path=str(optimized))  # fmt: skip
    assert optimized.exists() and session.providers == ["CPUExecutionProvider"]
    with pytest.raises(RnnxError, match="graph optimization must be one of"):
        rnnx.load(directory, graph_optimization="max")
    with pytest.raises(RnnxError, match="unknown onnxruntime option 'thread'"):
        rnnx.load(directory, thread=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the plain CPU path warns about nothing
        rnnx.load(directory)
