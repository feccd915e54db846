"""The web (onnxruntime-web in headless Chromium) and node (onnxruntime-node) runtimes: registry
entries like any other, verified against eager. Every layer kind is in tests/test_conformance.py;
these are what is particular to them: rnnx.mjs's own checks, streams kept in JavaScript, int8,
and a missing tool as one line. One browser and one worker serve the whole test session."""

from __future__ import annotations

import dataclasses
import gc

import numpy as np
import pytest
from click.testing import CliRunner

import rnnx
from rnnx.cli import main
from rnnx.core.errors import InputError, RnnxError
from rnnx.formats import RUNTIMES, runtime_missing
from rnnx.pipeline import ExportOptions, export

JS_RUNTIMES = ("node", "web")


@pytest.fixture(scope="module")
def int8_export(exported, tmp_path_factory):
    module, _ = exported["keyword_spotter"]
    directory = tmp_path_factory.mktemp("js-int8") / "kws"
    export(module, directory, ExportOptions(formats=("onnx",), quantize="int8", verify=False))
    return directory


@pytest.mark.parametrize("runtime", JS_RUNTIMES)
def test_cli_verify_runs_the_verifier_cases_in_it(js_hosts, exported, runtime) -> None:
    js_hosts(runtime)
    directory = str(exported["keyword_spotter"][1])
    result = CliRunner().invoke(main, ["verify", directory, "--runtime", runtime])
    assert result.exit_code == 0, result.output
    assert f"PASS {runtime}:onnx " in result.output and f"{runtime}:onnx streamed" in result.output


@pytest.mark.parametrize("runtime", JS_RUNTIMES)
def test_int8_verifies_with_its_tolerance(js_hosts, int8_export, runtime) -> None:
    js_hosts(runtime)
    report = rnnx.verify(int8_export, runtime=runtime, format="onnx-int8")
    assert report.passed, report.first_failure()
    assert report.summary()[f"{runtime}:onnx-int8"]["max_abs_error"] > 0


@pytest.mark.parametrize("runtime", JS_RUNTIMES)
def test_a_stream_keeps_its_state_in_javascript(js_hosts, exported, runtime) -> None:
    js_hosts(runtime)
    directory = exported["gru"][1]  # time-major, 2 layers
    session = rnnx.load(directory, runtime)
    x = np.random.default_rng(0).standard_normal((9, 2, 5)).astype(np.float32)
    whole = rnnx.load(directory, "onnxruntime").run({"input": x})
    stream = session.stream(batch=2)
    first = stream.step(x[:4])["output"]
    saved = stream.state  # read back from the JS stream
    rest = stream.step(x[4:])["output"]
    np.testing.assert_allclose(np.concatenate([first, rest]), whole["output"], atol=1e-6)
    np.testing.assert_allclose(stream.state["h0"], whole["h_n"], atol=1e-6)
    stream.set_state(saved)  # a new JS stream, from the saved states
    np.testing.assert_allclose(stream.step(x[4:])["output"], rest, atol=0)
    assert session.last_ms is not None and session.last_ms >= 0


@pytest.mark.parametrize("runtime", JS_RUNTIMES)
def test_rnnx_mjs_checks_inputs_itself(js_hosts, exported, runtime) -> None:
    """The Python Session checks feeds first; rnnx.mjs (what a browser user calls) has the same
    rules and messages, seen here by handing it feeds past the Python checks."""
    js_hosts(runtime)
    session = rnnx.load(exported["keyword_spotter"][1], runtime)
    bad = np.zeros((1, 4, 39), np.float32)  # keyword spotter LSTM: (batch, time, 40)
    with pytest.raises(InputError, match=rf"{runtime}: input 'input' has size 39 on axis 2, "
                                         r"expected 40"):  # fmt: skip
        session._run({"input": bad})
    with pytest.raises(InputError, match=rf"{runtime}: input 'input' has dtype float64"):
        session._run({"input": np.zeros((1, 4, 40))})
    # the session still works after a refused call
    assert session.run({"input": np.zeros((1, 4, 40), np.float32)})["output"].shape == (1, 4, 64)


def test_nan_policy_error_is_enforced_in_javascript(js_hosts, exported) -> None:
    js_hosts("node")
    session = rnnx.load(exported["gru"][1], "node", non_finite="error")
    x = np.zeros((3, 1, 5), np.float32)
    x[1, 0, 2] = np.nan
    with pytest.raises(InputError, match="node: input 'input' holds NaN or infinity"):
        session.run({"input": x})


@pytest.mark.parametrize(
    ("runtime", "variable", "message"),
    [
        ("node", "RNNX_NODE_MODULES", "needs the npm package onnxruntime-node: install"),
        ("web", "RNNX_NODE_MODULES", "needs the npm package onnxruntime-web: install"),
        ("web", "RNNX_CHROMIUM", "needs Chromium: apt-get install chromium"),
    ],
)
def test_a_missing_tool_is_one_line_saying_how_to_install_it(
    exported, tmp_path, monkeypatch, runtime, variable, message
) -> None:
    monkeypatch.setenv(variable, str(tmp_path / "nowhere"))
    assert message in (runtime_missing(RUNTIMES[runtime]) or "")
    with pytest.raises(RnnxError, match=message) as raised:
        rnnx.load(exported["gru"][1], runtime)
    assert "\n" not in str(raised.value)
    result = CliRunner().invoke(main, ["verify", str(exported["gru"][1]), "--runtime", runtime])
    assert result.exit_code == 1 and message in result.output


def test_options_of_other_runtimes_are_refused(js_hosts, exported) -> None:
    js_hosts("node")
    with pytest.raises(RnnxError, match="runs on cpu here, not 'cuda:0'"):
        rnnx.load(exported["gru"][1], "node", provider="cuda:0")


def test_bench_measures_them_beside_the_others(js_hosts, exported) -> None:
    """Each is timed from Python (transport included) and, as "(js)", inside the browser or
    Node: the deployment target's own cost, in the same interleaved rounds."""
    js_hosts("node")
    js_hosts("web")
    from rnnx.benchmark import BenchOptions, bench

    directory = exported["gru"][1]
    options = BenchOptions(runtimes=("eager", "onnxruntime", "node", "web"), times=(6,),
                           repeats=3, warmup=1)  # fmt: skip
    rows = bench(directory, options)
    expected = {"eager", "onnxruntime", "node", "web", "node (js)", "web (js)"}
    assert {r.runtime for r in rows} == expected
    by_name = {r.runtime: r for r in rows}
    assert by_name["web (js)"].providers == "web:wasm:1t" == by_name["web"].providers
    assert by_name["node (js)"].p50_ms <= by_name["node"].p50_ms
    assert all(r.p50_ms > 0 and r.repeats == 3 for r in rows)
    streamed = bench(directory, dataclasses.replace(options, chunks=(2,)))
    assert {(r.runtime, r.chunk) for r in streamed} == {(name, 2) for name in expected}


def test_a_released_session_frees_its_own_page_only(js_hosts, exported) -> None:
    """Each WASM thread count has its page, numbering its models from 1: letting go of a
    session on one page must not release the model of the same number on another."""
    js_hosts("web")
    directory = exported["gru"][1]
    x = np.ones((4, 1, 5), np.float32)
    two = rnnx.load(directory, "web", threads=2)
    three = rnnx.load(directory, "web", threads=3)
    expected = two.run({"input": x})["output"]
    del two
    three.run({"input": x})  # Playwright keeps its last call's frames: this one lets go of two
    gc.collect()
    np.testing.assert_allclose(three.run({"input": x})["output"], expected, atol=1e-6)
    assert three.providers == ["web:wasm:3t"]
    again = rnnx.load(directory, "web", threads=2)  # the page 2 release goes out first
    np.testing.assert_allclose(again.run({"input": x})["output"], expected, atol=1e-6)
