"""Run an ONNX graph at some shapes in a child process, to learn whether it crashes onnxruntime.

A graph made by a fallback capture route (a trace that fixed a loop over time) can take
onnxruntime down with the process: a GRU node fed an empty sequence ends in "terminate called
without an active exception". The verifier runs artifacts in-process, so such a graph is first
run here, where a crash is a result ("onnxruntime aborts at batch 1, time 1"), not the end of
the export. Errors that onnxruntime raises are the verifier's to report; only a crash counts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from rnnx.core.signature import Signature

_CHILD = """
import json, sys
import onnxruntime as ort
from rnnx.core.signature import Signature, random_inputs
request = json.loads(sys.stdin.read())
signature = Signature.from_dict(request["signature"])
session = ort.InferenceSession(request["path"], providers=["CPUExecutionProvider"])
for batch, time in request["sizes"]:
    print(batch, time, flush=True)
    feeds = random_inputs(signature, signature.fit({"batch": batch, "time": time}), seed=0)
    try:
        session.run(None, feeds)
    except Exception:
        pass
"""


def crash_at(
    path: Path, signature: Signature, sizes: Sequence[tuple[int, int]], timeout: float = 120
) -> str | None:
    """None when onnxruntime runs the graph at every (batch, time) in `sizes` without crashing;
    else where it crashed and how ("onnxruntime aborts at batch 1, time 1")."""
    request = {"path": os.fspath(path), "signature": signature.to_dict(), "sizes": list(sizes)}
    root = str(Path(__file__).resolve().parents[2])  # where `rnnx` imports from
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [root, os.environ.get("PYTHONPATH")]))}  # fmt: skip
    try:
        child = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(request),
                               capture_output=True, text=True, timeout=timeout,
                               env=environment)  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"onnxruntime runs past {timeout:.0f} s"
    if child.returncode == 0:
        return None
    last = (child.stdout.split("\n")[-2:-1] or [""])[0].split()
    where = f" at batch {last[0]}, time {last[1]}" if len(last) == 2 else ""
    if child.returncode < 0:
        how = signal.Signals(-child.returncode).name
        return f"onnxruntime crashes ({how}){where}"
    return f"onnxruntime fails to load or run it{where} (exit {child.returncode})"
