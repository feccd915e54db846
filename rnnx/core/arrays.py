""".npy/.npz files in and out: headers parsed as numpy parses them (numpy.lib.format), what
numpy rejects rejected, and the size a header declares checked against the file before anything
is allocated (a 40-byte file declaring a 10**12-element array is an error, not a MemoryError).

Array names written into an .npz are tensor names from an artifact: they become zip member
names, so they are escaped as file names (rnnx.core.paths.file_name) and unescaped on reading.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import numpy as np

from rnnx.core.errors import RnnxError, first_line
from rnnx.core.limits import MAX_ELEMENTS
from rnnx.core.paths import file_name, unescape_file_name

# How numpy fails on a truncated or foreign .npy/.npz file (zip, zlib, EOF, header errors).
UNREADABLE = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)
# deflate's largest compression ratio: an entry cannot hold more data than this many times its
# compressed size, whatever its zip header declares
_DEFLATE_RATIO = 1032


def read_array_file(path: str | os.PathLike) -> np.ndarray | dict[str, np.ndarray]:
    """An .npy file's array, or an .npz file's arrays by name (named by extension, or by
    content when a file is the other kind); RnnxError with one line for anything unreadable."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            zipped = file.read(4) == b"PK\x03\x04"
        if zipped:
            return _read_npz(path)
        with open(path, "rb") as file:
            return _read_npy(file, os.fstat(file.fileno()).st_size, str(path))
    except RnnxError:
        raise
    except UNREADABLE as error:
        raise RnnxError(
            f"'{path}' is not a readable .npy/.npz file: {first_line(error, 200)}"
        ) from error


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of an .npz file by (unescaped) name; an .npy file is an error."""
    arrays = read_array_file(path)
    if not isinstance(arrays, dict):
        raise RnnxError(f"'{path}' is an .npy file, not an .npz archive of named arrays")
    return {unescape_file_name(name): array for name, array in arrays.items()}


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Arrays by name into an .npz, names escaped as file names, through a temporary file and a
    rename: never half a file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp.npz")
    try:
        np.savez(temporary, **{file_name(name): array for name, array in arrays.items()})
        os.replace(temporary, path)
    except OSError as error:
        raise RnnxError(f"cannot write '{path}': {error.strerror or error}") from error
    finally:
        temporary.unlink(missing_ok=True)


def _read_npy(file: IO[bytes], available: int, source: str) -> np.ndarray:
    """One .npy array from `file` (positioned at its magic), at most `available` bytes long."""
    fmt = np.lib.format
    version = fmt.read_magic(file)
    if version not in ((1, 0), (2, 0), (3, 0)):  # numpy.lib.format reads these three only
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    # numpy's own header reader (a dict literal with exactly descr, fortran_order and shape,
    # at most 10000 bytes); version 3.0 is 2.0 with a UTF-8 header
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, fortran_order, dtype = read_header(file)
    if dtype.hasobject:
        raise ValueError("it holds Python objects (loading them would unpickle)")
    count = 1
    for size in shape:
        count *= size
    data = available - file.tell()
    if count > MAX_ELEMENTS or count * dtype.itemsize > data:
        raise RnnxError(
            f"'{source}': its header declares shape {list(shape)} ({count * dtype.itemsize} "
            f"bytes of {dtype}), but {max(data, 0)} bytes of data follow"
        )
    array = np.frombuffer(file.read(count * dtype.itemsize), dtype=dtype, count=count)
    array = array.reshape(shape[::-1]).transpose() if fortran_order else array.reshape(shape)
    return array.copy()  # writable, and owning its memory


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue  # numpy's NpzFile lists only its .npy members too
            name = info.filename[: -len(".npy")]
            bound = info.file_size
            if info.compress_type != zipfile.ZIP_STORED:
                bound = min(bound, info.compress_size * _DEFLATE_RATIO)
            with archive.open(info) as member:
                arrays[name] = _read_npy(member, bound, f"{path}:{info.filename}")
    return arrays
