"""The C++ runners (cpp/): ONNX Runtime and libtorch, whole sequences and streams, against Python.

The runners are built once per session with rnnx.cpp_build.build() (incremental after the first
time). The module is skipped only when cmake or a C++ compiler is missing; any build failure
fails the tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import rnnx
from rnnx.core.manifest import read_manifest
from rnnx.exporter.checkpoint import LoadOptions


def _have_compiler() -> bool:
    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else ["c++", "g++", "clang++"]
    return any(shutil.which(c) for c in candidates)


if shutil.which("cmake") is None or not _have_compiler():
    pytest.skip(
        "the C++ tests need cmake and a C++17 compiler (apt install cmake g++)",
        allow_module_level=True,
    )

# name -> (module factory, streamable). Input sizes come from the module itself.
MODELS = {
    "lstm2_batch_first": (lambda: nn.LSTM(4, 6, num_layers=2, batch_first=True), True),
    "gru": (lambda: nn.GRU(4, 5), True),
    "rnn_relu": (lambda: nn.RNN(3, 5, num_layers=2, nonlinearity="relu"), True),
    "lstm_proj": (lambda: nn.LSTM(5, 8, num_layers=2, proj_size=3), True),
    "lstm_bidirectional": (lambda: nn.LSTM(4, 6, bidirectional=True), False),
}
STREAMABLE = [name for name, (_, streamable) in MODELS.items() if streamable]
BACKENDS = ("onnxruntime", "torchscript")
FORMATS = {"onnxruntime": "onnx", "torchscript": "torchscript"}  # the artifact each runner runs
# Same onnxruntime library on both sides: equal up to float noise. libtorch and Python torch share
# one library too, but threading may reorder sums.
TOLERANCE = {"onnxruntime": 1e-6, "torchscript": 1e-5}
STREAM_TOLERANCE = 1e-5
BATCH, TIME = 2, 10  # TIME = 10 leaves a partial last chunk for chunk sizes 3 and 7


def export(module: nn.Module, directory: Path, **options: object) -> None:
    rnnx.export(module, directory, rnnx.ExportOptions(verify=False, **options))


@pytest.fixture(scope="session")
def runners() -> dict[str, Path]:
    from rnnx.cpp_build import build

    # By backend: build() names them by runtime (cpp-onnxruntime, or onnxruntime before).
    return {name.removeprefix("cpp-"): path for name, path in build().items()}


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> dict[str, tuple[nn.Module, Path]]:
    root = tmp_path_factory.mktemp("cpp-exports")
    torch.manual_seed(0)
    result = {}
    for name, (make, _) in MODELS.items():
        module = make().eval()
        export(module, root / name)
        result[name] = (module, root / name)
    return result


def cpp(runner: Path, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(runner), *map(str, args)], capture_output=True, text=True, timeout=300
    )


def data_input(module: nn.Module, seed: int = 0) -> np.ndarray:
    shape = (BATCH, TIME) if module.batch_first else (TIME, BATCH)
    rng = np.random.default_rng(seed)
    return rng.standard_normal((*shape, module.input_size), dtype=np.float32)


def zero_states(directory: Path) -> dict[str, np.ndarray]:
    signature = read_manifest(directory).signature
    return {
        name: np.zeros(signature.input(name).shape_for({"batch": BATCH}), np.float32)
        for name in signature.state_inputs
    }


def random_states(directory: Path, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        name: rng.standard_normal(zeros.shape, dtype=np.float32)
        for name, zeros in zero_states(directory).items()
    }


def run_cpp(
    runner: Path,
    directory: Path,
    x: np.ndarray,
    out: Path,
    *args: object,
    states: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Run a C++ runner on x (and initial states); returns its outputs by name."""
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "x.npy", x)
    state_args = []
    for name, value in (states or {}).items():
        np.save(out / f"state-{name}.npy", value)
        state_args += ["--state", f"{name}={out / f'state-{name}.npy'}"]
    result = cpp(runner, directory, out / "x.npy", "--output-dir", out / "y", *state_args, *args)
    assert result.returncode == 0, result.stderr
    return {p.stem: np.load(p) for p in (out / "y").glob("*.npy")}


def assert_close(actual: dict, expected: dict, atol: float) -> None:
    assert sorted(actual) == sorted(expected)
    for name in expected:
        assert actual[name].shape == expected[name].shape, name
        np.testing.assert_allclose(actual[name], expected[name], atol=atol, rtol=0, err_msg=name)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", MODELS)
def test_whole_sequence_matches_python(runners, exported, tmp_path, backend, model) -> None:
    module, directory = exported[model]
    x = data_input(module)
    expected = rnnx.load(directory, backend).run({"input": x, **zero_states(directory)})
    actual = run_cpp(runners[backend], directory, x, tmp_path)
    assert_close(actual, expected, TOLERANCE[backend])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", ["lstm2_batch_first", "gru", "lstm_bidirectional"])
def test_initial_states_match_python(runners, exported, tmp_path, backend, model) -> None:
    module, directory = exported[model]
    x, states = data_input(module), random_states(directory)
    expected = rnnx.load(directory, backend).run({"input": x, **states})
    actual = run_cpp(runners[backend], directory, x, tmp_path, states=states)
    assert_close(actual, expected, TOLERANCE[backend])


@pytest.mark.parametrize("chunk", [1, 3, 7])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", STREAMABLE)
def test_stream_equals_whole_sequence(runners, exported, tmp_path, backend, model, chunk) -> None:
    module, directory = exported[model]
    x = data_input(module)
    whole = run_cpp(runners[backend], directory, x, tmp_path / "whole")
    streamed = run_cpp(runners[backend], directory, x, tmp_path / "stream", "--chunk", chunk)
    assert_close(streamed, whole, STREAM_TOLERANCE)  # outputs and final states


@pytest.mark.parametrize("backend", BACKENDS)
def test_stream_from_initial_states(runners, exported, tmp_path, backend) -> None:
    module, directory = exported["lstm_proj"]
    x, states = data_input(module), random_states(directory)
    whole = run_cpp(runners[backend], directory, x, tmp_path / "whole", states=states)
    streamed = run_cpp(
        runners[backend], directory, x, tmp_path / "stream", "--chunk", 4, states=states
    )
    assert_close(streamed, whole, STREAM_TOLERANCE)


@pytest.mark.parametrize("chunk", [None, 1])
def test_torch_without_onednn_matches_python(runners, exported, tmp_path, chunk) -> None:
    module, directory = exported["lstm2_batch_first"]
    x = data_input(module)
    expected = rnnx.load(directory, "torchscript").run({"input": x, **zero_states(directory)})
    args = ["--no-onednn", *(["--chunk", chunk] if chunk else [])]
    actual = run_cpp(runners["torchscript"], directory, x, tmp_path, *args)
    assert_close(actual, expected, STREAM_TOLERANCE)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "onnxruntime"])
def test_libtorch_runners_stream_without_onednn_unless_asked(runners, exported, tmp_path,
                                                             backend) -> None:  # fmt: skip
    """oneDNN's RNN primitives cost ~1 ms a one-step call: streams default to libtorch's own
    kernels, whole sequences to oneDNN, and either is chosen by --onednn / --no-onednn."""
    module, directory = exported["lstm2_batch_first"]
    np.save(tmp_path / "x.npy", data_input(module))
    for args, said in ((["--chunk", "1"], "oneDNN off"), ([], "oneDNN on"),
                       (["--chunk", "1", "--onednn"], "oneDNN on"),
                       (["--no-onednn"], "oneDNN off")):  # fmt: skip
        result = cpp(runners[backend], directory, tmp_path / "x.npy", *args)
        assert result.returncode == 0 and said in result.stdout, (args, result.stdout)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bidirectional_refuses_to_stream(runners, exported, tmp_path, backend) -> None:
    module, directory = exported["lstm_bidirectional"]
    np.save(tmp_path / "x.npy", data_input(module))
    result = cpp(runners[backend], directory, tmp_path / "x.npy", "--chunk", 2)
    assert_one_line_error(result, "cannot stream", "bidirectional", "--chunk")


@pytest.mark.parametrize("backend", BACKENDS)
def test_stateless_export(runners, tmp_path, backend) -> None:
    module = nn.GRU(4, 5).eval()
    export(module, tmp_path / "m", stateless=True)
    x = data_input(module)
    expected = rnnx.load(tmp_path / "m", backend).run({"input": x})
    assert_close(run_cpp(runners[backend], tmp_path / "m", x, tmp_path), expected, 1e-5)
    result = cpp(runners[backend], tmp_path / "m", tmp_path / "x.npy", "--chunk", 2)
    assert_one_line_error(result, "no state inputs")


def _onnx_without_metadata(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "plain",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["time", "batch", 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["time", "batch", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def _torchscript_without_metadata(path: Path) -> None:
    traced = torch.jit.trace(nn.Linear(4, 4).eval(), torch.zeros(1, 4))
    torch.jit.save(traced, str(path))


METADATA_FIXTURES = Path(__file__).resolve().parent.parent / "data" / "metadata"


def _with_metadata(path: Path, backend: str, props: dict[str, str], extra_file: str) -> None:
    """Stores `props` in the artifact at `path` the way rnnx does (ONNX metadata_props, or a
    TorchScript extra file named `extra_file`)."""
    if backend == "onnxruntime":
        import onnx

        model = onnx.load(path)
        del model.metadata_props[:]
        for key, value in props.items():
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, path)
    else:
        module = torch.jit.load(str(path))
        torch.jit.save(module, str(path), _extra_files={extra_file: json.dumps(props)})


class _ToFloat(nn.Module):
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.float()


def _int64_model(path: Path, backend: str) -> None:
    """A valid contract-v1 model whose input is int64 token ids: C++ runs float32 only."""
    signature = {
        "inputs": [{"name": "tokens", "dims": ["batch", "time"], "dtype": "int64", "high": 10}],
        "outputs": [{"name": "output", "dims": ["batch", "time"], "dtype": "float32"}],
    }
    props = {"rnnx.schema": "1", "rnnx.version": rnnx.__version__,
             "rnnx.signature": json.dumps(signature)}  # fmt: skip
    if backend == "onnxruntime":
        import onnx
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            [helper.make_node("Cast", ["tokens"], ["output"], to=TensorProto.FLOAT)],
            "tokens",
            [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", "time"])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", "time"])],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, path)
    else:
        traced = torch.jit.trace(_ToFloat(), torch.zeros(1, 3, dtype=torch.int64))
        torch.jit.save(traced, str(path))
    _with_metadata(path, backend, props, "rnnx_metadata.json")


def _bad_case(case: str, backend: str, directory: Path, tmp: Path) -> tuple[list, list[str]]:
    """The runner arguments for one bad-input case, and fragments its error must contain."""
    good = tmp / "good.npy"
    np.save(good, np.zeros((TIME, BATCH, 4), np.float32))
    suffix = ".onnx" if backend == "onnxruntime" else ".pt"
    if case == "missing model":
        return [tmp / f"absent{suffix}", good], [f"absent{suffix}", "does not exist"]
    if case == "no rnnx metadata":
        plain = tmp / f"plain{suffix}"
        if backend == "onnxruntime":
            _onnx_without_metadata(plain)
        else:
            _torchscript_without_metadata(plain)
        return [plain, good], ["plain", "no rnnx metadata"]
    if case == "old rnnx metadata":  # flat keys, no rnnx.schema; TorchScript: rnnx.json
        old = tmp / f"old{suffix}"
        if backend == "onnxruntime":
            _onnx_without_metadata(old)
        else:
            _torchscript_without_metadata(old)
        props = json.loads((METADATA_FIXTURES / "invalid" / "missing_schema.json").read_text())
        _with_metadata(old, backend, props, "rnnx.json")
        return [old, good], [f"old{suffix}", "older rnnx", "re-export"]
    if case == "int64 input":
        tokens = tmp / f"tokens{suffix}"
        _int64_model(tokens, backend)
        return [tokens, good], [f"tokens{suffix}", "'tokens' is int64", "float32"]
    if case == "missing input file":
        return [directory, tmp / "absent.npy"], ["absent.npy"]
    bad = tmp / "bad.npy"
    if case == "wrong feature size":
        np.save(bad, np.zeros((TIME, BATCH, 5), np.float32))
        fragments = ["bad.npy", "size 5 on axis 2, expected 4", "input[time, batch, 4]"]
        return [directory, bad], fragments
    if case == "rank 2":
        np.save(bad, np.zeros((TIME, 4), np.float32))
        return [directory, bad], ["bad.npy", "rank 2", "input[time, batch, 4]"]
    if case == "float64":
        np.save(bad, np.zeros((TIME, BATCH, 4), np.float64))
        return [directory, bad], ["bad.npy", "float32"]
    if case == "wrong state shape":
        np.save(bad, np.zeros((1, BATCH, 6), np.float32))
        return [directory, good, "--state", f"h0={bad}"], ["bad.npy", "h0", "expected 2"]
    raise AssertionError(case)


BAD_CASES = [
    "missing model",
    "no rnnx metadata",
    "old rnnx metadata",
    "int64 input",
    "missing input file",
    "wrong feature size",
    "rank 2",
    "float64",
    "wrong state shape",
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_inputs_give_one_line_errors(runners, tmp_path, backend, case) -> None:
    directory = tmp_path / "lstm"  # time-major, 4 features, 2 layers of 6
    if case not in ("missing model", "no rnnx metadata", "old rnnx metadata", "int64 input"):
        export(nn.LSTM(4, 6, num_layers=2).eval(), directory)
    args, fragments = _bad_case(case, backend, directory, tmp_path)
    assert_one_line_error(cpp(runners[backend], *args), *fragments)


@pytest.mark.parametrize("chunk", [1, None])
@pytest.mark.parametrize("backend", BACKENDS)
def test_bench_prints_latency_percentiles(runners, exported, tmp_path, backend, chunk) -> None:
    module, directory = exported["lstm2_batch_first"]
    np.save(tmp_path / "x.npy", data_input(module))
    args = ["--bench", 20, *(["--chunk", chunk] if chunk else [])]
    result = cpp(runners[backend], directory, tmp_path / "x.npy", *args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    human = next(line for line in lines if line.startswith("bench:"))
    assert ("20 stream steps of chunk 1" if chunk else "20 whole-sequence calls") in human
    for label in ("p50", "p90", "p99"):
        assert re.search(rf"{label} \d+(\.\d+)? us", human), human
    # The last line of stdout is the machine-readable summary (what `rnnx bench` parses).
    bench = json.loads(lines[-1])["bench"]
    assert bench["calls"] == 20 and bench["chunk"] == chunk
    assert 0 < bench["min_us"] <= bench["p50_us"] <= bench["p90_us"] <= bench["p99_us"]
    assert bench["p99_us"] <= bench["max_us"] and bench["min_us"] <= bench["mean_us"]
    assert f"p50 {bench['p50_us']:.1f} us" in human


def _copy_export(directory: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "export"
    shutil.copytree(directory, copy)
    return copy


def _edit_manifest(directory: Path, edit) -> None:
    manifest = json.loads((directory / "rnnx.json").read_text())
    edit(manifest)
    (directory / "rnnx.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("backend", BACKENDS)
def test_runner_takes_its_artifact_from_the_manifest(runners, exported, tmp_path, backend):
    module, directory = exported["gru"]
    x = data_input(module)
    expected = run_cpp(runners[backend], directory, x, tmp_path / "original")
    copy = _copy_export(directory, tmp_path)
    fmt = FORMATS[backend]
    manifest = json.loads((copy / "rnnx.json").read_text())
    (copy / "nested").mkdir()
    (copy / manifest["artifacts"][fmt]).rename(copy / "nested" / "renamed.bin")
    _edit_manifest(copy, lambda m: m["artifacts"].update({fmt: "nested/renamed.bin"}))
    assert_close(run_cpp(runners[backend], copy, x, tmp_path / "renamed"), expected, 0)


@pytest.mark.parametrize("where", ["parent", "absolute", "nested parent"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_runner_refuses_artifact_outside_the_directory(
    runners, exported, tmp_path, backend, where
) -> None:
    module, directory = exported["gru"]
    np.save(tmp_path / "x.npy", data_input(module))
    copy, fmt = _copy_export(directory, tmp_path), FORMATS[backend]
    name = json.loads((copy / "rnnx.json").read_text())["artifacts"][fmt]
    (tmp_path / "outside").mkdir()
    shutil.copy(copy / name, tmp_path / "outside" / name)  # it exists: refused for its path
    target = {
        "parent": f"../outside/{name}",
        "absolute": str(tmp_path / "outside" / name),
        "nested parent": f"sub/../../outside/{name}",
    }[where]
    _edit_manifest(copy, lambda m: m["artifacts"].update({fmt: target}))
    result = cpp(runners[backend], copy, tmp_path / "x.npy")
    assert_one_line_error(result, "rnnx.json", target, "not a relative path inside")


@pytest.mark.parametrize("backend", BACKENDS)
def test_runner_refuses_manifest_without_schema(runners, exported, tmp_path, backend) -> None:
    module, directory = exported["gru"]
    np.save(tmp_path / "x.npy", data_input(module))
    copy = _copy_export(directory, tmp_path)
    _edit_manifest(copy, lambda m: m.pop("schema", None))
    result = cpp(runners[backend], copy, tmp_path / "x.npy")
    assert_one_line_error(result, "rnnx.json", "older rnnx", "re-export")


@pytest.mark.parametrize("backend", BACKENDS)
def test_runner_refuses_newer_manifest(runners, exported, tmp_path, backend) -> None:
    module, directory = exported["gru"]
    np.save(tmp_path / "x.npy", data_input(module))
    copy = _copy_export(directory, tmp_path)
    _edit_manifest(copy, lambda m: m.update(schema=2))
    result = cpp(runners[backend], copy, tmp_path / "x.npy")
    assert_one_line_error(result, "rnnx.json", "newer rnnx (schema 2)", "supports schema 1")


@pytest.mark.parametrize("backend", BACKENDS)
def test_runner_needs_its_format_in_the_manifest(runners, exported, tmp_path, backend) -> None:
    module, directory = exported["gru"]
    np.save(tmp_path / "x.npy", data_input(module))
    copy, fmt = _copy_export(directory, tmp_path), FORMATS[backend]
    _edit_manifest(copy, lambda m: m["artifacts"].pop(fmt))
    result = cpp(runners[backend], copy, tmp_path / "x.npy")
    assert_one_line_error(
        result, f"export directory '{copy}' has no {fmt} artifact (export with --format {fmt})"
    )


@pytest.fixture(scope="session")
def tuned_export(tmp_path_factory) -> Path:
    """An int8 LSTM export tuned by the real `rnnx tune`, among the onnxruntime targets only
    (onnx and onnx-int8), so that whichever it records, rnnx-ort-run can run it."""
    import rnnx.tune as tuning

    directory = tmp_path_factory.mktemp("cpp-tuned") / "lstm"
    torch.manual_seed(0)
    export(nn.LSTM(4, 6).eval(), directory, quantize="int8")
    every_target = tuning.verified_targets

    def onnxruntime_targets(*args, **kwargs):
        targets, rejected = every_target(*args, **kwargs)
        return [t for t in targets if t.runtime.name == "onnxruntime"], rejected

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tuning, "verified_targets", onnxruntime_targets)
        tuning.tune(directory, tuning.TuneOptions(batches=(1, 4), times=(10,), repeats=3))
    return directory


def test_ort_runner_runs_what_tune_chose(runners, tuned_export, tmp_path) -> None:
    x = data_input(nn.LSTM(4, 6))  # batch 2: nearest tuned batch is 1
    np.save(tmp_path / "x.npy", x)
    result = cpp(runners["onnxruntime"], tuned_export, tmp_path / "x.npy", "--tuned",
                 "--output-dir", tmp_path / "y")  # fmt: skip
    assert result.returncode == 0, result.stderr
    chosen = json.loads((tuned_export / "rnnx.json").read_text())["tuned"][0]
    assert chosen["batch"] == 1
    assert result.stderr.strip() == (
        f"tuned: {chosen['target']}, {chosen['threads']} thread (tuned for batch 1 x time 10)"
    )
    outputs = {p.stem: np.load(p) for p in (tmp_path / "y").glob("*.npy")}
    expected = rnnx.load(tuned_export, "auto", batch=BATCH).run({"input": x})
    assert_close(outputs, expected, 1e-5)
    # the check tells the artifacts apart: int8 and f32 compute visibly different outputs
    f32 = rnnx.load(tuned_export, "onnxruntime").run({"input": x})["output"]
    int8 = rnnx.load(tuned_export, "onnxruntime", format="onnx-int8").run({"input": x})["output"]
    assert np.abs(f32 - int8).max() > 1e-4


TUNED_ERRORS = {
    # case -> (edit of every tuned record, fragments of the one-line error)
    "openvino chosen": (
        {"runtime": "openvino", "target": "openvino@bf16", "options": {"precision": "bf16"}},
        [
            "openvino@bf16 for batch 1",
            "rnnx-ort-run cannot run",
            'rnnx.load(dir, "auto")',
            "pass no --tuned",
        ],
    ),
    "zero threads": (
        {"threads": 0},
        ["rnnx.json': a 'tuned' record's 'threads' must be an integer from 1 to 1024", "re-tune"],
    ),
    "unknown option": ({"options": {"model": "x.py"}}, ["'tuned' record is malformed"]),
    "not tuned": (None, ["has no tuning: run `rnnx tune", "or pass no --tuned"]),
}


@pytest.mark.parametrize("case", TUNED_ERRORS)
def test_ort_runner_refuses_tuning_it_cannot_run(runners, tuned_export, tmp_path, case) -> None:
    edit, fragments = TUNED_ERRORS[case]
    copy = _copy_export(tuned_export, tmp_path)
    if edit is None:
        _edit_manifest(copy, lambda m: m.update(tuned=[]))
    else:  # every record, so no other one is runnable
        _edit_manifest(copy, lambda m: [r.update(edit) for r in m["tuned"]])
    np.save(tmp_path / "x.npy", data_input(nn.LSTM(4, 6)))
    result = cpp(runners["onnxruntime"], copy, tmp_path / "x.npy", "--tuned")
    assert_one_line_error(result, *fragments)
    assert result.stdout == ""


def test_tuned_needs_an_export_directory(runners, tuned_export, tmp_path) -> None:
    np.save(tmp_path / "x.npy", data_input(nn.LSTM(4, 6)))
    result = cpp(runners["onnxruntime"], tuned_export / "model.onnx", tmp_path / "x.npy", "--tuned")
    assert_one_line_error(result, "--tuned needs an export directory as MODEL")


def test_stream_example_runs(runners, exported) -> None:
    example = runners["onnxruntime"].parent / "rnnx-stream-example"
    result = cpp(example, exported["lstm_proj"][1] / "model.onnx", 3)
    assert result.returncode == 0, result.stderr
    assert "step 2: output [1, 1, 3]" in result.stdout


def test_build_again_is_incremental(runners) -> None:
    from rnnx.cpp_build import build

    assert sorted(build().values()) == sorted(runners.values())  # nothing to rebuild


def test_cpp_runners_are_rows_of_rnnx_bench(runners, tmp_path) -> None:
    """`rnnx bench` puts the C++ runners next to the Python runtimes, with a ratio to eager."""
    layer = nn.LSTM(4, 6).eval()
    export(layer, tmp_path / "lstm")
    options = rnnx.BenchOptions(runtimes=("eager", "cpp-onnxruntime", "cpp-torchscript"),
                           times=(6,), chunks=(1, 3), repeats=5)  # fmt: skip
    rows = rnnx.bench(tmp_path / "lstm", options, reference=layer)
    cpp_rows = [r for r in rows if r.runtime.startswith("cpp-")]
    assert {(r.runtime, r.chunk) for r in cpp_rows} == {
        (runtime, chunk) for runtime in ("cpp-onnxruntime", "cpp-torchscript") for chunk in (1, 3)
    }
    for row in cpp_rows:
        assert 0 < row.p50_ms <= row.p90_ms <= row.p99_ms and row.ratio_to_eager > 0


class _RawAudio(nn.Module):
    """(batch, samples) -> Conv1d(kernel 16, stride 8) -> LSTM: time takes at least 16."""

    def __init__(self) -> None:
        super().__init__()
        self.frontend = nn.Conv1d(1, 4, kernel_size=16, stride=8)
        self.rnn = nn.LSTM(4, 5, batch_first=True)

    def forward(self, audio, h, c):
        y, (h, c) = self.rnn(self.frontend(audio.unsqueeze(1)).transpose(1, 2), (h, c))
        return y, h, c


@pytest.mark.parametrize("backend", BACKENDS)
def test_runner_refuses_input_shorter_than_the_minimum(runners, tmp_path, backend) -> None:
    """The signature's `axes` (minimum length, stride) hold in C++ as in Python."""
    model = _RawAudio().eval()
    directory = tmp_path / "vad"
    rnnx.export(
        model,
        directory,
        rnnx.ExportOptions(verify=False),
        example_inputs=(torch.randn(2, 160), torch.zeros(1, 2, 5), torch.zeros(1, 2, 5)),
    )
    np.save(tmp_path / "short.npy", np.zeros((1, 8), np.float32))
    result = cpp(runners[backend], directory, tmp_path / "short.npy")
    assert_one_line_error(result, "input 'audio' needs a time size of at least 16, got 8")
    audio = np.random.default_rng(0).standard_normal((2, 400)).astype(np.float32)
    np.save(tmp_path / "audio.npy", audio)
    out = tmp_path / "out"
    assert (
        cpp(runners[backend], directory, tmp_path / "audio.npy", "--output-dir", out).returncode
        == 0
    )
    with torch.no_grad():
        expected = model(torch.from_numpy(audio), torch.zeros(1, 2, 5), torch.zeros(1, 2, 5))[0]
    np.testing.assert_allclose(np.load(out / "output.npy"), expected.numpy(), atol=1e-5)


# --- rnnx-aoti-run: pt2 packages (AOTInductor), compiled once per session in tests/conftest.py
# and shared with tests/exporter/test_pt2.py. Same library on both sides (libtorch runs the
# package's kernels and its aten::lstm/gru/rnn fallbacks): equal up to threading.
AOTI_LAYERS = ["lstm_proj", "rnn_relu_2layer", "gru_bidirectional", "rnn_tanh_batch_first"]


@pytest.mark.parametrize("model", AOTI_LAYERS)
def test_aoti_runner_matches_python(runners, pt2_exports, tmp_path, model) -> None:
    module, directory = pt2_exports[model]
    x, states = data_input(module), random_states(directory)
    session = rnnx.load(directory, "aoti", trust=LoadOptions(trust_checkpoint=True))
    for initial, name in ((zero_states(directory), "zero"), (states, "random")):
        expected = session.run({"input": x, **initial})
        actual = run_cpp(runners["aoti"], directory, x, tmp_path / name, states=initial)
        assert_close(actual, expected, 1e-5)


@pytest.mark.parametrize("chunk", [1, 3])
def test_aoti_stream_equals_whole_sequence(runners, pt2_exports, tmp_path, chunk) -> None:
    module, directory = pt2_exports["lstm_proj"]
    x, states = data_input(module), random_states(directory)
    whole = run_cpp(runners["aoti"], directory, x, tmp_path / "whole", states=states)
    args = ["--chunk", chunk, "--no-onednn"]
    streamed = run_cpp(runners["aoti"], directory, x, tmp_path / "stream", *args, states=states)
    assert_close(streamed, whole, STREAM_TOLERANCE)


def test_aoti_runner_benches_and_refuses_what_it_cannot_run(runners, pt2_exports, tmp_path):
    module, directory = pt2_exports["gru_bidirectional"]
    np.save(tmp_path / "x.npy", data_input(module))
    result = cpp(runners["aoti"], directory, tmp_path / "x.npy", "--bench", 5)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["bench"]["calls"] == 5
    streamed = cpp(runners["aoti"], directory, tmp_path / "x.npy", "--chunk", 2)
    assert_one_line_error(streamed, "cannot stream", "bidirectional")
    np.save(tmp_path / "bad.npy", np.zeros((BATCH, TIME, 3), np.float32))
    wrong = cpp(runners["aoti"], directory, tmp_path / "bad.npy")
    assert_one_line_error(wrong, "bad.npy", "size 3 on axis 2, expected 4")
    (tmp_path / "plain.pt2").write_bytes(b"not a zip archive")
    unreadable = cpp(runners["aoti"], tmp_path / "plain.pt2", tmp_path / "x.npy")
    assert_one_line_error(unreadable, "plain.pt2", "cannot load the AOTInductor package")
    _, onnx_only = pt2_exports["lstm_proj"][0], tmp_path / "onnx-only"
    export(nn.GRU(4, 5).eval(), onnx_only, formats=("onnx",))
    missing = cpp(runners["aoti"], onnx_only, tmp_path / "x.npy")
    assert_one_line_error(missing, "has no pt2 artifact (export with --format pt2)")
