"""`rnnx web DIR -o SITE`: the static site, opened in headless Chromium from a plain static
server (as a user serves it), its demo's streamed outputs compared with eager PyTorch, and its
ES module's API (load, run, stream, reset, save/restore, input checks) used from the page."""

from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
import pytest
from click.testing import CliRunner
from torch import nn

import rnnx
from rnnx.cli import main
from rnnx.pipeline import ExportOptions, export
from rnnx.runtimes.js_session import decode

MODELS = {
    "lstm-2-batch-first": lambda: nn.LSTM(4, 6, num_layers=2, batch_first=True),
    "gru-bidirectional": lambda: nn.GRU(3, 5, bidirectional=True),  # whole sequences only
}


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> dict:
    """name -> (export directory, site) written by the CLI."""
    root = tmp_path_factory.mktemp("web")
    result = {}
    for name, make in MODELS.items():
        export(make().eval(), root / name, ExportOptions(formats=("onnx",), verify=False))
        site = root / f"{name}-site"
        outcome = CliRunner().invoke(main, ["web", str(root / name), "-o", str(site)])
        if outcome.exit_code != 0 and "npm package onnxruntime-web" in outcome.output:
            pytest.skip(outcome.output.strip())
        assert outcome.exit_code == 0, outcome.output
        result[name] = (root / name, site)
    return result


@pytest.fixture(scope="module")
def served(sites):
    """The sites' parent folder on a plain static server (http.server), on loopback."""
    root = next(iter(sites.values()))[1].parent
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _open_demo(js_hosts, served, site):
    js_hosts("web")
    from rnnx.runtimes.js_host import shared

    page = shared("web").open(f"{served}/{site.name}/demo.html")
    page.wait_for_function("() => window.demo || window.demoError")
    assert page.evaluate("window.demoError ?? null") is None
    return page


@pytest.mark.parametrize("name", list(MODELS))
def test_the_demo_page_streams_what_eager_computes(js_hosts, sites, served, name, tmp_path):
    directory, site = sites[name]
    page = _open_demo(js_hosts, served, site)
    try:
        demo = page.evaluate("window.demo")
        page.screenshot(path=str(tmp_path / "demo.png"))
        status = page.inner_text("#status")
    finally:
        page.close()
    inputs = {n: decode(t) for n, t in demo["inputs"].items()}
    expected = rnnx.load(directory, "eager").run(inputs)
    assert demo["outputs"], "the page computed nothing"
    for output, encoded in demo["outputs"].items():
        np.testing.assert_allclose(decode(encoded), expected[output], rtol=1e-4, atol=1e-5)
    streamable = name == "lstm-2-batch-first"
    assert demo["streaming"] is streamable and demo["calls"] == (20 if streamable else 1)
    assert ("chunks of 10" in status) is streamable, status
    assert (tmp_path / "demo.png").stat().st_size > 5000  # the plots were drawn


API_CHECKS = """async () => {
  const ort = await import("./ort/ort.wasm.min.mjs");
  const rnnx = await import("./rnnx.mjs");
  const model = await rnnx.load(ort, "./model");
  const x = new ort.Tensor("float32", new Float32Array(2 * 3 * 4).fill(0.5), [2, 3, 4]);
  const whole = await model.run({ input: x });
  const stream = model.stream(2);
  const first = await stream.step(x);
  const saved = stream.save();
  const again = await stream.step(x);
  stream.restore(saved);
  const restored = await stream.step(x);
  stream.reset();
  const reset = await stream.step(x);
  const errors = [];
  for (const call of [
    () => model.run({ input: new ort.Tensor("float32", new Float32Array(2 * 3 * 5), [2, 3, 5]) }),
    () => model.run({ inptu: x }),
    () => stream.step(new ort.Tensor("float32", new Float32Array(3 * 3 * 4), [3, 3, 4])),
    () => model.run({ input: { data: new Float64Array(24), dims: [2, 3, 4] } }),
    async () => stream.restore("{}"),
  ]) {
    try { await call(); errors.push(null); } catch (e) { errors.push(`${e.name}: ${e.message}`); }
  }
  const same = (a, b) => a.data.every((v, i) => v === b.data[i]);
  return {
    streamEqualsRun: same(first.output, whole.output),
    stateNames: Object.keys(stream.state).sort(),
    restoredEqualsAgain: same(restored.output, again.output),
    resetEqualsFirst: same(reset.output, first.output),
    continuedDiffers: !same(again.output, first.output),
    errors,
  };
}"""


def test_the_es_module_mirrors_the_python_api(js_hosts, sites, served) -> None:
    page = _open_demo(js_hosts, served, sites["lstm-2-batch-first"][1])
    try:
        result = page.evaluate(API_CHECKS)
    finally:
        page.close()
    assert result["streamEqualsRun"] and result["restoredEqualsAgain"]
    assert result["resetEqualsFirst"] and result["continuedDiffers"]
    assert result["stateNames"] == ["c0", "h0"]
    assert result["errors"] == [
        "InputError: input 'input' has size 5 on axis 2, expected 4 (shape input[batch, time, 4])",
        "InputError: unknown input 'inptu'; the model's inputs are input, h0, c0",
        "InputError: input 'input' has batch size 3 but the stream has batch size 2",
        "InputError: input 'input' has dtype float64, expected float32",
        "RnnxError: cannot read stream state: not a state written by Stream.save",
    ]


def test_a_site_is_not_written_over_by_accident(sites, tmp_path) -> None:
    directory, _ = sites["lstm-2-batch-first"]
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    runner = CliRunner()
    result = runner.invoke(main, ["web", str(directory), "-o", str(tmp_path / "taken")])
    assert result.exit_code == 1 and "exists and is not empty" in result.output
    site = str(tmp_path / "site")
    assert runner.invoke(main, ["web", str(directory), "-o", site]).exit_code == 0
    result = runner.invoke(main, ["web", str(directory), "-o", site])
    assert result.exit_code == 1 and "pass --force" in result.output
    assert runner.invoke(main, ["web", str(directory), "-o", site, "--force"]).exit_code == 0
    result = runner.invoke(main, ["web", str(directory), "-o", site, "--format", "onnx-int8"])
    assert result.exit_code == 1 and "no onnx-int8 artifact" in result.output
