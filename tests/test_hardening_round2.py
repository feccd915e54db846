"""Hardening, round 2 (issue #23): the newer surfaces (tune records, pt2, C++ runners,
triton/serve, inspect) follow the export path's rules.

One rule for every reader of an export directory: artifact paths resolve inside it, names from
artifacts are never path components, copies never follow links out of it, and nothing that
runs code opens without the trust the command was given.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import rnnx
from rnnx.core.errors import RnnxError, UntrustedCodeError
from rnnx.core.limits import MAX_THREADS
from rnnx.core.paths import check_directory_name, copy_export, file_name, unescape_file_name
from rnnx.exporter.checkpoint import LoadOptions
from tests.test_cli import assert_clean_error, run


@pytest.fixture(scope="module")
def lstm_export(tmp_path_factory) -> Path:
    """A streamable LSTM export (onnx only, weights for the eager reference), made once."""
    root = tmp_path_factory.mktemp("lstm")
    torch.manual_seed(0)
    rnnx.export(nn.LSTM(3, 4).eval(), root / "out",
                rnnx.ExportOptions(formats=("onnx",), verify=False))  # fmt: skip
    return root / "out"


@pytest.fixture
def export_copy(lstm_export, tmp_path) -> Path:
    shutil.copytree(lstm_export, tmp_path / "out")
    return tmp_path / "out"


def _edit_manifest(directory: Path, edit) -> None:
    path = directory / "rnnx.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def _rename_tensor(directory: Path, old: str, new: str) -> None:
    def edit(manifest: dict) -> None:
        signature = manifest["signature"]
        for tensor in signature["inputs"] + signature["outputs"]:
            tensor["name"] = new if tensor["name"] == old else tensor["name"]
        signature["state_pairs"] = [[new if n == old else n for n in p]
                                    for p in signature["state_pairs"]]  # fmt: skip

    _edit_manifest(directory, edit)


# --- 1. and 8. trust ------------------------------------------------------------------------


def _fake_runners(tmp_path: Path, monkeypatch) -> Path:
    """Each C++ runner replaced by a script that leaves a mark when run and prints a latency."""
    import rnnx.benchmark as benchmark

    marks = tmp_path / "marks"
    marks.mkdir()
    scripts = {}
    for name in ("cpp-onnxruntime", "cpp-torchscript", "cpp-aoti"):
        script = tmp_path / f"{name}.sh"
        summary = '{"bench": {"p50_us": 1, "p90_us": 1, "p99_us": 1, "calls": 1}}'
        script.write_text(f"#!/bin/sh\ntouch {marks / name}\necho '{summary}'\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        scripts[name] = script
    monkeypatch.setattr(benchmark, "runner_path", lambda runtime: scripts[runtime.name])
    return marks


def test_bench_never_runs_the_cpp_aoti_runner_without_trust(export_copy, tmp_path, monkeypatch):
    (export_copy / "model.pt2").write_bytes(b"not a package: it must never be opened")
    _edit_manifest(export_copy, lambda m: m["artifacts"].update(pt2="model.pt2"))
    marks = _fake_runners(tmp_path, monkeypatch)
    options = rnnx.BenchOptions(runtimes=("eager", "cpp-aoti"), times=(2,), repeats=1, warmup=0)
    with pytest.raises(UntrustedCodeError, match="--trust-checkpoint"):
        rnnx.bench(export_copy, options)
    assert not (marks / "cpp-aoti").exists()
    # every available runtime: the aoti runner is left out, and says why
    default = rnnx.BenchOptions(runtimes=None, times=(2,), repeats=1, warmup=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = rnnx.bench(export_copy, default)
    assert any("cpp-aoti left out" in str(w.message) for w in caught)
    assert "cpp-aoti" not in {r.runtime for r in rows} and not (marks / "cpp-aoti").exists()
    assert (marks / "cpp-onnxruntime").exists()  # the runners that run no code from the export
    # with the trust given, it runs
    trusted = rnnx.BenchOptions(runtimes=("eager", "cpp-aoti"), times=(2,), repeats=1,
                                warmup=0, trust=LoadOptions(trust_checkpoint=True))  # fmt: skip
    assert "cpp-aoti" in {r.runtime for r in rnnx.bench(export_copy, trusted)}
    assert (marks / "cpp-aoti").exists()


def test_bench_with_only_a_cpp_runner(export_copy, tmp_path, monkeypatch) -> None:
    _fake_runners(tmp_path, monkeypatch)
    rows = rnnx.bench(export_copy, rnnx.BenchOptions(runtimes=("cpp-onnxruntime",), times=(2,)))
    assert [r.runtime for r in rows] == ["cpp-onnxruntime"] and rows[0].ratio_to_eager is None


def test_load_auto_passes_the_trust_on(export_copy, monkeypatch) -> None:
    import rnnx.formats as formats

    record = {"batch": 1, "time": 2, "threads": 1, "target": "aoti", "runtime": "aoti",
              "options": {}, "p50_ms": 1.0}  # fmt: skip
    _edit_manifest(export_copy, lambda m: m.update(tuned=[record]))
    with pytest.raises(UntrustedCodeError, match="--trust-checkpoint"):
        rnnx.load(export_copy, "auto")
    seen = {}
    real = formats.load

    def spy(export_dir, runtime="onnxruntime", **kwargs):
        if runtime == "aoti":
            seen.update(kwargs)
            return "opened"
        return real(export_dir, runtime, **kwargs)

    monkeypatch.setattr(formats, "load", spy)
    trust = LoadOptions(trust_checkpoint=True)
    assert formats._load_tuned(export_copy, "cpu", False, None, trust, {}) == "opened"
    assert seen["trust"] is trust


def test_load_options_is_public() -> None:
    from rnnx import LoadOptions as Public

    assert Public is LoadOptions and "LoadOptions" in rnnx.__all__


def test_triton_aoti_needs_trust(export_copy, tmp_path) -> None:
    pytest.importorskip("tritonclient.grpc.model_config_pb2")
    (export_copy / "model.pt2").write_bytes(b"x")
    _edit_manifest(export_copy, lambda m: m["artifacts"].update(pt2="model.pt2"))
    args = ("triton", export_copy, "-o", tmp_path / "repo", "--runtime", "aoti")
    assert_clean_error(run(*args), "--trust-checkpoint", out_dir=tmp_path / "repo")
    assert run(*args, "--trust-checkpoint").exit_code == 0
    config = (tmp_path / "repo" / "out" / "config.pbtxt").read_text()
    assert 'key: "trust_checkpoint"' in config and 'string_value: "true"' in config


# --- 2. and 3. names and copies -------------------------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", "a/b", "/abs", ".hidden", "", "x y", "..\\x"])
def test_triton_name_must_be_plain(export_copy, tmp_path, monkeypatch, name) -> None:
    pytest.importorskip("tritonclient.grpc.model_config_pb2")
    monkeypatch.chdir(tmp_path)
    result = run("triton", export_copy, "-o", tmp_path / "repo", "--name", name)
    assert_clean_error(result, "--name", "not a plain name", out_dir=tmp_path / "repo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_triton_copies_no_file_a_link_points_to_outside(export_copy, tmp_path) -> None:
    pytest.importorskip("tritonclient.grpc.model_config_pb2")
    secret = tmp_path / "secret.txt"
    secret.write_text("private key")
    (export_copy / "notes.txt").symlink_to(secret)
    result = run("triton", export_copy, "-o", tmp_path / "repo")
    assert_clean_error(result, "notes.txt", "outside the export directory",
                       out_dir=tmp_path / "repo")  # fmt: skip
    # a link that stays inside is copied as the file it points to
    (export_copy / "notes.txt").unlink()
    (export_copy / "notes.txt").symlink_to(export_copy / "rnnx.json")
    assert run("triton", export_copy, "-o", tmp_path / "repo").exit_code == 0
    copied = tmp_path / "repo" / "out" / "1" / "export" / "notes.txt"
    assert not copied.is_symlink() and copied.read_text() == (export_copy / "rnnx.json").read_text()


def test_copy_export_refuses_links_out_at_any_depth(tmp_path) -> None:
    source = tmp_path / "export"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("a")
    (source / ".hidden").write_text("left out")
    (source / "sub" / "b.txt").write_text("b")
    copy_export(source, tmp_path / "copy")
    assert sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*")) \
        == ["a.txt", "sub", "sub/b.txt"]  # fmt: skip
    (source / "sub" / "etc").symlink_to("/etc/hostname")
    with pytest.raises(RnnxError, match="outside the export directory"):
        copy_export(source, tmp_path / "copy2")
    (source / "sub" / "etc").unlink()
    (source / "dir").symlink_to(tmp_path)  # a link to a directory (here: above the export)
    with pytest.raises(RnnxError, match="outside the export directory"):
        copy_export(source, tmp_path / "copy3")
    (source / "dir").unlink()
    os.mkfifo(source / "fifo")
    with pytest.raises(RnnxError, match="not a regular file"):
        copy_export(source, tmp_path / "copy4")


@pytest.mark.parametrize("target", ["/dev/zero", "outside.json"])
def test_manifest_link_out_of_the_export_is_refused(export_copy, tmp_path, target) -> None:
    manifest = export_copy / "rnnx.json"
    if target == "outside.json":
        (tmp_path / target).write_bytes(manifest.read_bytes())
        target = str(tmp_path / target)
    manifest.unlink()
    manifest.symlink_to(target)
    assert_clean_error(run("verify", export_copy), "outside the export directory")
    assert_clean_error(run("inspect", export_copy), "outside the export directory")


def test_manifest_must_be_a_small_regular_file(export_copy) -> None:
    manifest = export_copy / "rnnx.json"
    manifest.unlink()
    os.mkfifo(manifest)
    assert_clean_error(run("verify", export_copy), "not a regular file")
    manifest.unlink()
    with open(manifest, "wb") as file:
        file.truncate((64 << 20) + 1)  # sparse: no disk used
    assert_clean_error(run("verify", export_copy), "larger than")


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", ".", "..", "a/b", "%2F", "", "h\x1b]0;"])
def test_tensor_names_as_file_names_are_escaped(name) -> None:
    encoded = file_name(name)
    assert "/" not in encoded and "\\" not in encoded and not encoded.startswith(".")
    assert encoded and encoded.isprintable() and unescape_file_name(encoded) == name


def test_plain_names_pass(tmp_path) -> None:
    for name in ("lstm", "kws-2", "model_1.0"):
        assert check_directory_name(name, "--name") == name
        assert file_name(name) == name


# --- 4. bounds on manifest values -----------------------------------------------------------


@pytest.mark.parametrize(
    "edit, field",
    [
        ({"threads": 2**31}, "'threads' must be an integer from 1 to 1024, got 2147483648"),
        ({"threads": 100000}, "'threads'"),
        ({"threads": 1.5}, "'threads'"),
        ({"threads": True}, "'threads'"),
        ({"threads": "2"}, "'threads'"),
        ({"batch": 0}, "'batch'"),
        ({"time": 10**30}, "'time'"),
        ({"runtime": "cpp-onnxruntime"}, "'runtime'"),
        ({"options": {"optimized_model_path": "/tmp/x"}}, "'options'"),
    ],
)
def test_tuned_records_are_bounded_and_typed(export_copy, edit, field) -> None:
    record = {"batch": 1, "time": 2, "threads": 1, "target": "onnxruntime",
              "runtime": "onnxruntime", "options": {}, "p50_ms": 1.0, **edit}  # fmt: skip
    _edit_manifest(export_copy, lambda m: m.update(tuned=[record]))
    with pytest.raises(RnnxError, match="a 'tuned' record's") as error:
        rnnx.load(export_copy, "auto")
    assert field in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("threads", [0, MAX_THREADS + 1, 2**31])
def test_threads_are_bounded_everywhere(lstm_export, tmp_path, threads) -> None:
    with pytest.raises(RnnxError, match="threads must be an integer from 1 to 1024"):
        rnnx.load(lstm_export, threads=threads)
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 3), np.float32))
    result = run("run", lstm_export, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz",
                 "--threads", threads)  # fmt: skip
    assert_clean_error(result, "threads")
    if threads > 0:
        assert_clean_error(run("bench", lstm_export, "--threads", threads), "--threads")
        assert_clean_error(run("tune", lstm_export, "--threads", threads), "--threads")


# --- 5. valid inputs that crashed -----------------------------------------------------------


@pytest.mark.parametrize("command", ["bench", "tune"])
@pytest.mark.parametrize("repeats", ["0", "-1"])
def test_repeats_below_one_are_refused(lstm_export, command, repeats) -> None:
    assert_clean_error(run(command, lstm_export, "--repeats", repeats), "--repeats", "at least 1")


@pytest.mark.parametrize("option, port", [("--http-port", "70000"), ("--grpc-port", "-1")])
def test_ports_out_of_range_are_refused(lstm_export, option, port) -> None:
    assert_clean_error(run("serve", lstm_export, option, port), option, "0 to 65535")


def test_ort_rewrite_with_names_not_in_the_graph(export_copy, tmp_path) -> None:
    pytest.importorskip("tritonclient.grpc.model_config_pb2")
    _rename_tensor(export_copy, "output", "y")
    result = run("triton", export_copy, "-o", tmp_path / "repo", "--flavour", "onnxruntime")
    assert_clean_error(result, "'y' is not an input or output of the graph",
                       out_dir=tmp_path / "repo")  # fmt: skip


@pytest.mark.parametrize(
    "option, value",
    [("--max-batch", str(2**40)), ("--instances", "100000"), ("--max-sequences", "0"),
     ("--idle-timeout", "nan"), ("--idle-timeout", "1e300")],
)  # fmt: skip
def test_triton_options_are_bounded(lstm_export, tmp_path, option, value) -> None:
    pytest.importorskip("tritonclient.grpc.model_config_pb2")
    result = run("triton", lstm_export, "-o", tmp_path / "repo", option, value)
    assert_clean_error(result, option, out_dir=tmp_path / "repo")


def test_serve_aoti_needs_trust(export_copy) -> None:
    (export_copy / "model.pt2").write_bytes(b"x")
    _edit_manifest(export_copy, lambda m: m["artifacts"].update(pt2="model.pt2"))
    assert_clean_error(run("serve", export_copy, "--runtime", "aoti"), "--trust-checkpoint")
    assert "--trust-checkpoint" in run("serve", "--help").output


# --- 6. names the server uses ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["START", "END", "READY", "CORRID", "rnnx_state_0_in"])
@pytest.mark.parametrize("flavour", ["python", "onnxruntime"])
def test_io_names_that_collide_with_tritons_are_refused(export_copy, tmp_path, name, flavour):
    pytest.importorskip("tritonclient.grpc.model_config_pb2")
    _rename_tensor(export_copy, "input" if name != "END" else "h0", name)
    result = run("triton", export_copy, "-o", tmp_path / "repo", "--flavour", flavour)
    assert_clean_error(result, repr(name), "Triton's sequence batcher", out_dir=tmp_path / "repo")


# --- 4. dtypes, dims and array headers ------------------------------------------------------


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda t: t.update(dtype="complex1024"), "has dtype 'complex1024', not one of"),
        (lambda t: t.update(dtype="object"), "has dtype 'object'"),
        (lambda t: t["dims"].__setitem__(2, 2**40), "larger than 2147483647"),
        (lambda t: t.update(high="a lot"), "'high'"),
    ],
)
@pytest.mark.parametrize("command", ["verify", "run", "bench"])
def test_signature_values_are_bounded(export_copy, tmp_path, edit, needle, command) -> None:
    _edit_manifest(export_copy, lambda m: edit(m["signature"]["inputs"][0]))
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 3), np.float32))
    args = {"verify": (), "bench": ("--repeats", "1", "--time", "2"),
            "run": ("--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz")}[command]  # fmt: skip
    result = run(command, export_copy, *args)
    assert result.exit_code == 1, result.output
    assert needle in result.stderr.strip().splitlines()[-1]


def test_huge_fixed_dims_are_refused_before_allocating(export_copy) -> None:
    # each dim within bounds, the product far beyond any allocation
    _edit_manifest(export_copy, lambda m: m["signature"]["inputs"][1].update(
        dims=[2**30, "batch", 2**30]))  # fmt: skip
    with pytest.raises(RnnxError, match="more than rnnx allocates"):
        rnnx.load(export_copy).stream(1)
    assert_clean_error(run("verify", export_copy), "more than rnnx allocates")


def _npy(header: str, data: bytes = b"", version: bytes = b"\x01\x00") -> bytes:
    text = header.encode("latin1")
    text += b" " * ((64 - (10 + len(text) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY" + version + len(text).to_bytes(2, "little") + text + data


HOSTILE_NPY = {
    "huge shape": ("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }",
                   "bytes of data follow"),
    "huge 1-d": ("{'descr': '<f4', 'fortran_order': False, 'shape': (10000000000,), }",
                 "bytes of data follow"),
    "extra key": ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
                  "not a readable"),
    "descr in a string": ("{'note': \"'descr': '<f4'\", 'descr': '<i8', 'fortran_order': False, "
                          "'shape': (2,), }", "not a readable"),
    "shape is an int": ("{'descr': '<f4', 'fortran_order': False, 'shape': 5, }",
                        "not a readable"),
    "object dtype": ("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", "not a readable"),
    "not a dict": ("[1, 2]", "not a readable"),
}  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE_NPY)
def test_hostile_npy_headers(lstm_export, tmp_path, case) -> None:
    header, needle = HOSTILE_NPY[case]
    path = tmp_path / "x.npy"
    path.write_bytes(_npy(header, b"\0" * 16))
    result = run("run", lstm_export, "--input", path, "-o", tmp_path / "y.npz")
    assert_clean_error(result, "x.npy", needle)
    assert not (tmp_path / "y.npz").exists()


def test_hostile_npz_members_and_stream_restore(lstm_export, tmp_path) -> None:
    import zipfile

    archive = tmp_path / "state.npz"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 100000, 100000), }"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("h0.npy", _npy(header, b"\0" * 64))
    stream = rnnx.load(lstm_export).stream(1)
    with pytest.raises(RnnxError, match="cannot read stream state .*bytes of data follow"):
        stream.restore(archive)
    result = run("run", lstm_export, "--input", archive, "-o", tmp_path / "y.npz")
    assert_clean_error(result, "h0.npy", "bytes of data follow")


def test_arrays_numpy_reads_still_read(lstm_export, tmp_path) -> None:
    """Fortran order, version 2.0 headers, compressed archives: what numpy reads, rnnx reads."""
    from rnnx.core.arrays import read_array_file

    x = np.random.default_rng(0).standard_normal((5, 1, 3)).astype(np.float32)
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    np.testing.assert_array_equal(read_array_file(tmp_path / "f.npy"), x)
    with open(tmp_path / "v2.npy", "wb") as file:
        np.lib.format.write_array(file, x, version=(2, 0))
    np.testing.assert_array_equal(read_array_file(tmp_path / "v2.npy"), x)
    np.savez_compressed(tmp_path / "c.npz", input=x)
    np.testing.assert_array_equal(read_array_file(tmp_path / "c.npz")["input"], x)
    stream = rnnx.load(lstm_export).stream(1)
    stream.step(x)
    stream.save(tmp_path / "s.npz")
    again = rnnx.load(lstm_export).stream(1)
    again.restore(tmp_path / "s.npz")
    np.testing.assert_array_equal(again.state["h0"], stream.state["h0"])


def test_output_names_never_become_paths(export_copy, tmp_path) -> None:
    """An output named '../x' in the signature becomes an escaped zip member, never a path."""
    import zipfile

    import onnx

    model = onnx.load(export_copy / "model.onnx")
    for value in model.graph.output:
        if value.name == "output":
            value.name = "../x"
    for node in model.graph.node:
        node.output[:] = ["../x" if o == "output" else o for o in node.output]
    onnx.save(model, export_copy / "model.onnx")
    _rename_tensor(export_copy, "output", "../x")
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 3), np.float32))
    result = run("run", export_copy, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz")
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "y.npz") as archive:
        members = archive.namelist()
    assert "%2E.%2Fx.npy" in members and not any(".." in m.split("/") for m in members)


# --- 7. output that talks to the terminal ---------------------------------------------------


def _hostile_onnx(path: Path, text: str, big: int = 0) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info(f"x{text}", TensorProto.FLOAT, [f"N{text}", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [f"N{text}", 3])
    graph = helper.make_graph([helper.make_node("Relu", [f"x{text}"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, producer_name=text,
                              opset_imports=[helper.make_opsetid("", 17)])  # fmt: skip
    model.producer_version = text
    signature = {"inputs": [{"name": f"in{text}", "dims": ["time", "batch", 3]}],
                 "outputs": [{"name": text or "o", "dims": ["time", "batch", 3]}]}  # fmt: skip
    props = {f"key{text}": text + "v" * big, "rnnx.schema": "1",
             "rnnx.signature": json.dumps(signature), "rnnx.version": text}  # fmt: skip
    helper.set_model_props(model, props)
    onnx.save(model, path)


def _assert_terminal_safe(output: str, longest: int) -> None:
    import unicodedata

    for line in output.splitlines():
        assert len(line) <= longest, line[:80]
        hidden = [c for c in line if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")]
        assert not hidden, (hidden, line[:200])


def test_inspect_escapes_and_cuts(tmp_path) -> None:
    osc = "\x1b]0;owned\x07\x1b[2J\u202e\r\x00"
    _hostile_onnx(tmp_path / "m.onnx", osc, big=1 << 20)
    result = run("inspect", tmp_path / "m.onnx")
    assert result.exit_code == 0, result.output
    _assert_terminal_safe(result.stdout, 2000)
    assert "\\x1b]0;owned\\x07" in result.stdout  # shown, escaped
    document = run("inspect", tmp_path / "m.onnx", "--json")
    assert document.exit_code == 0 and len(document.stdout) < 100_000
    _assert_terminal_safe(document.stdout, 10_000)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(text=st.text(max_size=30))
def test_fuzz_inspect_on_hostile_onnx(tmp_path, text) -> None:
    path = tmp_path / "fuzz.onnx"
    _hostile_onnx(path, text, big=3000)
    for args in ((), ("--json",)):
        result = run("inspect", path, *args)
        assert result.exit_code in (0, 1), result.output  # never an internal error
        _assert_terminal_safe(result.stdout + result.stderr, 10_000)


def test_error_lines_are_escaped(export_copy, tmp_path) -> None:
    _rename_tensor(export_copy, "input", "in\x1b]0;owned\x07")
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 3), np.float64))
    result = run("run", export_copy, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz")
    assert result.exit_code == 1 and "\x1b" not in result.stderr and "\\x1b" in result.stderr


# --- fuzz: tune records and triton names ----------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),  # fmt: skip
    max_leaves=6,
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(edits=st.dictionaries(st.sampled_from(["batch", "time", "threads", "runtime", "options",
                                               "target"]), _JSON, max_size=3))  # fmt: skip
def test_fuzz_tune_records(lstm_export, edits) -> None:
    """Whatever a tuned record holds, "auto" opens a runtime with bounded threads or refuses in
    one line; never another exception."""
    import rnnx.formats as formats

    record = {"batch": 1, "time": 2, "threads": 1, "target": "onnxruntime",
              "runtime": "onnxruntime", "options": {}, **edits}  # fmt: skip
    try:
        runtime, options, threads, batch, time = formats._tuned_record(record, lstm_export)
    except RnnxError as error:
        assert "\n" not in str(error) and len(str(error)) < 400
        return
    assert type(threads) is int and 1 <= threads <= MAX_THREADS
    assert runtime in formats.PYTHON_RUNTIMES and set(options) <= {"format", "precision"}


@settings(max_examples=60, deadline=None)
@given(name=st.text(max_size=12))
def test_fuzz_triton_names(name) -> None:
    """A model name is one plain directory name, or refused in one line."""
    try:
        checked = check_directory_name(name, "--name")
    except RnnxError as error:
        assert "--name" in str(error) and "\n" not in str(error)
        return
    assert checked == name and Path(name).name == name and name not in (".", "..")
    assert not name.startswith(".") and "/" not in name and "\\" not in name
