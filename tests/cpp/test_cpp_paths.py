"""The C++ runners follow the Python rule for an export directory (issue #23): artifact paths
resolve inside it (symlinks included), names from artifacts are never path components, and the
.npy reader parses a header as numpy does (rejecting what numpy rejects, sizes checked against
the file before allocating). Each path rule has a test here; the .npy reader is fuzzed against
numpy itself."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import rnnx
from rnnx.core.paths import file_name
from tests.cpp.test_cpp import assert_one_line_error, cpp, runners  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def lstm(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("cpp-paths") / "lstm"
    rnnx.export(nn.LSTM(3, 4).eval(), directory,
                rnnx.ExportOptions(formats=("onnx",), verify=False))  # fmt: skip
    return directory


@pytest.fixture(scope="module")
def npy_check(runners) -> Path:  # noqa: F811
    tool = runners["onnxruntime"].parent / "rnnx-metadata-check"
    assert tool.is_file(), tool
    return tool


@pytest.fixture
def x(tmp_path) -> Path:
    np.save(tmp_path / "x.npy", np.zeros((5, 2, 3), np.float32))
    return tmp_path / "x.npy"


def _copy(directory: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "export"
    shutil.copytree(directory, copy)
    return copy


# --- artifact paths resolve inside the export -----------------------------------------------


def test_runner_refuses_an_artifact_symlink_out_of_the_export(runners, lstm, tmp_path, x):  # noqa: F811
    copy = _copy(lstm, tmp_path)
    outside = tmp_path / "elsewhere.onnx"
    (copy / "model.onnx").rename(outside)
    (copy / "model.onnx").symlink_to(outside)
    result = cpp(runners["onnxruntime"], copy, x)
    assert_one_line_error(result, "points outside the export directory")
    assert result.stdout == ""
    # the same link inside the directory is followed
    (copy / "model.onnx").unlink()
    (copy / "real.onnx").write_bytes(outside.read_bytes())
    (copy / "model.onnx").symlink_to(copy / "real.onnx")
    assert cpp(runners["onnxruntime"], copy, x).returncode == 0


def test_runner_refuses_a_directory_symlink_on_the_way_out(runners, lstm, tmp_path, x):  # noqa: F811
    copy = _copy(lstm, tmp_path)
    (tmp_path / "other").mkdir()
    (copy / "model.onnx").rename(tmp_path / "other" / "model.onnx")
    (copy / "sub").symlink_to(tmp_path / "other")
    manifest = json.loads((copy / "rnnx.json").read_text())
    manifest["artifacts"]["onnx"] = "sub/model.onnx"
    (copy / "rnnx.json").write_text(json.dumps(manifest))
    assert_one_line_error(cpp(runners["onnxruntime"], copy, x), "outside the export directory")


def test_runner_refuses_dotdot_and_absolute_artifacts(runners, lstm, tmp_path, x):  # noqa: F811
    for name in ("../model.onnx", str(lstm / "model.onnx")):
        copy = _copy(lstm, tmp_path)
        manifest = json.loads((copy / "rnnx.json").read_text())
        manifest["artifacts"]["onnx"] = name
        (copy / "rnnx.json").write_text(json.dumps(manifest))
        result = cpp(runners["onnxruntime"], copy, x)
        assert_one_line_error(result, "not a relative path inside the export directory")
        shutil.rmtree(copy)


@pytest.mark.parametrize("target", ["/dev/zero", "outside.json"])
def test_runner_refuses_a_manifest_link_out_of_the_export(runners, lstm, tmp_path, x, target):  # noqa: F811
    copy = _copy(lstm, tmp_path)
    if target == "outside.json":
        (tmp_path / target).write_bytes((copy / "rnnx.json").read_bytes())
        target = str(tmp_path / target)
    (copy / "rnnx.json").unlink()
    (copy / "rnnx.json").symlink_to(target)
    assert_one_line_error(cpp(runners["onnxruntime"], copy, x), "outside the export directory")


# --- names from artifacts are never path components -----------------------------------------


def _rename_output(directory: Path, old: str, new: str) -> None:
    """Rename a graph output in model.onnx and in its rnnx.signature metadata (and manifest)."""
    import onnx

    model = onnx.load(directory / "model.onnx")
    for value in model.graph.output:
        value.name = new if value.name == old else value.name
    for node in model.graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
    for prop in model.metadata_props:
        if prop.key == "rnnx.signature":
            signature = json.loads(prop.value)
            for tensor in signature["outputs"]:
                tensor["name"] = new if tensor["name"] == old else tensor["name"]
            signature["state_pairs"] = [[new if n == old else n for n in p]
                                        for p in signature["state_pairs"]]  # fmt: skip
            prop.value = json.dumps(signature)
    onnx.save(model, directory / "model.onnx")


@pytest.mark.parametrize("name", ["../x", "/tmp/rnnx-absolute", "..", "a/b", "\x1b]0;title\x07"])
def test_output_dir_never_takes_an_output_name_as_a_path(runners, lstm, tmp_path, x, name):  # noqa: F811
    copy = _copy(lstm, tmp_path)
    _rename_output(copy, "output", name)
    out = tmp_path / "deep" / "out"
    result = cpp(runners["onnxruntime"], copy / "model.onnx", x, "--output-dir", out)
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted([file_name(name) + ".npy", "c_n.npy", "h_n.npy"])
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["out"]
    assert not Path("/tmp/rnnx-absolute.npy").exists()
    np.testing.assert_array_equal(np.load(out / (file_name(name) + ".npy")).shape, (5, 2, 4))


def test_control_characters_in_errors_are_escaped(runners, lstm, tmp_path, x):  # noqa: F811
    copy = _copy(lstm, tmp_path)
    _rename_output(copy, "output", "evil\x1b]0;owned\x07")
    np.save(tmp_path / "bad.npy", np.zeros((5, 2, 3), np.float64))
    result = cpp(runners["onnxruntime"], copy / "model.onnx", tmp_path / "bad.npy")
    assert result.returncode == 1 and "\x1b" not in result.stderr and "\x07" not in result.stderr


# --- manifest values bounded ----------------------------------------------------------------


@pytest.mark.parametrize("threads", [2**31, 100000, 2**64 + 1, 0])
def test_tuned_threads_are_bounded(runners, lstm, tmp_path, x, threads):  # noqa: F811
    copy = _copy(lstm, tmp_path)
    record = {"batch": 2, "time": 5, "threads": threads, "target": "onnxruntime",
              "runtime": "onnxruntime", "options": {}}  # fmt: skip
    manifest = json.loads((copy / "rnnx.json").read_text())
    manifest["tuned"] = [record]
    (copy / "rnnx.json").write_text(json.dumps(manifest))
    result = cpp(runners["onnxruntime"], copy, x, "--tuned")
    assert_one_line_error(result, "a 'tuned' record's 'threads' must be an integer from 1 to 1024")


@pytest.mark.parametrize("threads", ["1025", "2147483648", "-1"])
def test_threads_option_is_bounded(runners, lstm, x, threads):  # noqa: F811
    result = cpp(runners["onnxruntime"], lstm, x, "--threads", threads)
    assert result.returncode == 1 and "--threads expects an integer from 1 to 1024" in result.stderr


def test_bench_with_only_the_cpp_runner(runners, lstm) -> None:  # noqa: F811
    from tests.test_cli import run

    result = run("bench", lstm, "--runtime", "cpp-onnxruntime", "--repeats", "2", "--time", "3")
    assert result.exit_code == 0, result.output
    assert "cpp-onnxruntime" in result.stdout


# --- the .npy reader parses as numpy does ---------------------------------------------------


def _npy(header: str, data: bytes, version: bytes = b"\x01\x00") -> bytes:
    text = header.encode("latin1")
    text += b" " * ((64 - (10 + len(text) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY" + version + len(text).to_bytes(2, "little") + text + data


def _numpy_reads(path: Path) -> np.ndarray | None:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception:  # noqa: BLE001 - numpy's refusal, whatever its type, is what is compared
        return None
    return array if isinstance(array, np.ndarray) else None


def _cpp_reads(tool: Path, path: Path) -> tuple[list[int], float] | None:
    done = subprocess.run([str(tool), "--npy", str(path)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
        return None
    result = json.loads(done.stdout)
    return result["shape"], result["sum"]


def _agrees(tool: Path, path: Path) -> None:
    """The C++ reader accepts only what numpy reads as a C-order float32 array, and then reads
    the same shape and values."""
    ours = _cpp_reads(tool, path)
    theirs = _numpy_reads(path)
    if ours is None:
        return  # refusing is always allowed (the reader takes float32 C order only)
    assert theirs is not None, f"C++ read {ours} where numpy refuses"
    assert theirs.dtype == np.float32
    assert list(theirs.shape) == ours[0]
    assert abs(float(theirs.astype(np.float64).sum()) - ours[1]) < 1e-6


HEADERS = {
    "valid": ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", True),
    "valid 1-d": ("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", True),
    "valid scalar": ("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", True),
    "reordered keys": ("{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", True),
    "double quotes": ('{"descr": "<f4", "fortran_order": False, "shape": (3, 2)}', True),
    "shape not a tuple": ("{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", False),
    "descr inside a string": ("{'x': \"'descr': '<f4', 'shape': (6,)\", 'descr': '<f4', "
                              "'fortran_order': False, 'shape': (2, 3), }", False),
    "extra key": ("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'y': 1}", False),
    "missing key": ("{'descr': '<f4', 'shape': (6,), }", False),
    "int64 data": ("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", False),
    "negative dim": ("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, -3), }", False),
    "overflowing shape": ("{'descr': '<f4', 'fortran_order': False, "
                          "'shape': (4294967296, 4294967296, 4294967296), }", False),
    "huge shape": ("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }",
                   False),
    "fortran": ("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", False),
    "text after": ("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} junk", False),
    "not a dict": ("['descr', '<f4', 'fortran_order', False, 'shape', (6,)]", False),
}  # fmt: skip


@pytest.mark.parametrize("case", HEADERS)
def test_npy_headers_against_numpy(npy_check, tmp_path, case) -> None:
    header, valid = HEADERS[case]
    path = tmp_path / "x.npy"
    path.write_bytes(_npy(header, np.arange(6, dtype=np.float32).tobytes()))
    assert (_cpp_reads(npy_check, path) is not None) == valid, case
    _agrees(npy_check, path)


def test_npy_versions_and_sizes(npy_check, tmp_path) -> None:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    data = np.arange(6, dtype=np.float32).tobytes()
    path = tmp_path / "x.npy"
    path.write_bytes(_npy(header, data, b"\x01\x07"))  # minor version 7: numpy refuses
    assert _cpp_reads(npy_check, path) is None
    path.write_bytes(_npy(header, data[:-4]))  # truncated data
    assert _cpp_reads(npy_check, path) is None
    # a header length of 4 GB (version 2): refused before anything is read or allocated
    path.write_bytes(b"\x93NUMPY\x02\x00" + (2**32 - 1).to_bytes(4, "little") + b"{")
    assert _cpp_reads(npy_check, path) is None
    np.save(path, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert _cpp_reads(npy_check, path) == ([2, 3], 15.0)


_VALID = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
_ALPHABET = "{}()[]:,' \"<f4i8TrueFalsdcphom_0123456789-\n\\"


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.data())
def test_fuzz_npy_headers_against_numpy(npy_check, tmp_path, data) -> None:
    """Random edits of a valid header: whatever the C++ reader accepts, numpy reads the same."""
    header = list(_VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(header)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        char = data.draw(st.sampled_from(_ALPHABET))
        if action == "insert":
            header.insert(at, char)
        elif header and at < len(header):
            if action == "delete":
                del header[at]
            else:
                header[at] = char
    path = tmp_path / "fuzz.npy"
    path.write_bytes(_npy("".join(header), np.arange(6, dtype=np.float32).tobytes()))
    _agrees(npy_check, path)
