"""`rnnx run`: arrays from a .npy/.npz file through an exported model, outputs to an .npz."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from rnnx.core.arrays import read_array_file
from rnnx.core.arrays import write_npz as write_arrays
from rnnx.core.errors import InputError, RnnxError
from rnnx.formats import load
from rnnx.runtimes import Session
from rnnx.runtimes.streaming import run_in_chunks


@dataclasses.dataclass(frozen=True)
class RunOptions:
    runtime: str = "onnxruntime"
    provider: str = "cpu"
    allow_fallback: bool = False
    threads: int | None = None
    chunk: int | None = None  # stream the time axis in chunks of this many steps
    trust: Any = None  # LoadOptions (--model, --trust-checkpoint) for the eager runtime


def run_file(
    model_dir: str | os.PathLike,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    options: RunOptions = RunOptions(),
) -> dict[str, np.ndarray]:
    if options.chunk is not None and options.chunk < 1:
        raise RnnxError(f"--chunk must be at least 1, got {options.chunk}")
    session = load(
        model_dir,
        options.runtime,
        provider=options.provider,
        allow_fallback=options.allow_fallback,
        threads=options.threads,
        trust=options.trust,
    )
    # States not in the file start at zero (Signature.check_feeds: one policy everywhere).
    feeds = session.signature.check_feeds(read_arrays(input_path, session))
    chunked = options.chunk is not None
    outputs = run_in_chunks(session, feeds, options.chunk) if chunked else session.run(feeds)
    write_npz(Path(output_path), outputs)
    return outputs


def read_arrays(path: str | os.PathLike, session: Session) -> dict[str, np.ndarray]:
    """A .npy file is the model's one data input; an .npz maps input names to arrays."""
    path = Path(path)
    if not path.is_file():
        raise RnnxError(f"input file '{path}' not found")
    array = read_array_file(path)  # headers checked as numpy does, sizes against the file
    if isinstance(array, dict):
        if path.suffix != ".npz":
            raise RnnxError(f"'{path}' is not a readable .npy file: an .npz archive: name it .npz")
        return array
    if path.suffix == ".npz":
        raise RnnxError(f"'{path}' is not a readable .npz file: not an .npz archive")
    data = session.signature.data_inputs
    if len(data) != 1:
        names = ", ".join(t.name for t in data)
        raise InputError(f"the model has several data inputs ({names}): pass an .npz naming them")
    return {data[0].name: array}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Through a temporary file and a rename: never a half-written output. Output names come
    from the artifact, so they are escaped where they become zip member names."""
    if not path.parent.is_dir():
        raise RnnxError(f"output directory '{path.parent}' does not exist")
    if path.is_dir():
        raise RnnxError(f"output '{path}' is a directory; name an .npz file")
    write_arrays(path, arrays)
