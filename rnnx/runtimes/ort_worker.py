"""An onnxruntime session in a process of its own, driven over stdin/stdout (emulated.py).

Run by path, not as `rnnx.runtimes.ort_worker`, so that it imports neither the rnnx package
nor torch: under an emulator every import costs tens of times its native time. Frames are a
4-byte little-endian length and an .npz (requests: the feeds by position and their names;
replies: the outputs by position, or an `error` entry holding the message).
"""

from __future__ import annotations

import io
import json
import struct
import sys

import numpy as np


def read_frame(stream) -> bytes | None:
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack("<I", header)
    return stream.read(size)


def write_frame(stream, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    stream.write(struct.pack("<I", len(data)) + data)
    stream.flush()


def optimization_level(name: str):
    """onnxruntime's GraphOptimizationLevel for rnnx's name of it (disable, basic, extended,
    all). Here, not in onnxruntime_session.py which uses it too, because this file imports no
    rnnx module (see the docstring)."""
    import onnxruntime as ort

    levels = ort.GraphOptimizationLevel
    return {
        "disable": levels.ORT_DISABLE_ALL,
        "basic": levels.ORT_ENABLE_BASIC,
        "extended": levels.ORT_ENABLE_EXTENDED,
        "all": levels.ORT_ENABLE_ALL,
    }[name]


def main() -> None:
    import onnxruntime as ort

    path, settings = sys.argv[1], json.loads(sys.argv[2])
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.get("threads") or 0
    options.inter_op_num_threads = settings.get("inter_op_threads") or 0
    options.graph_optimization_level = optimization_level(settings.get("graph_optimization", "all"))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as error:
        write_frame(stdout, {"error": np.array(f"{type(error).__name__}: {error}")})
        return
    names = {
        "inputs": [i.name for i in session.get_inputs()],
        "outputs": [o.name for o in session.get_outputs()],
        "providers": session.get_providers(),
    }
    write_frame(stdout, {"names": np.array(json.dumps(names))})
    while (frame := read_frame(stdin)) is not None:
        with np.load(io.BytesIO(frame), allow_pickle=False) as archive:
            # by position: a tensor's name need not be a valid file name inside the .npz
            keys = json.loads(str(archive["keys"]))
            feeds = {name: archive[f"in{i}"] for i, name in enumerate(keys)}
        try:
            outputs = session.run(names["outputs"], feeds)
        except Exception as error:
            write_frame(stdout, {"error": np.array(f"{type(error).__name__}: {error}")})
            continue
        write_frame(stdout, {f"out{i}": value for i, value in enumerate(outputs)})


if __name__ == "__main__":
    main()
