"""The README's demo: checkpoint -> `rnnx export` -> `rnnx verify` -> run in onnxruntime.

It goes through the installed command line exactly as a user would, on a checkpoint of the
bundled example model written the way training code writes one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from rnnx.models import keyword_spotter_lstm

OUTPUT = Path("demo-output")


def _rnnx(*args: str) -> None:
    command = [sys.executable, "-m", "rnnx", *args]
    print(f"\n$ rnnx {' '.join(args)}", flush=True)
    subprocess.run(command, check=True)


def main() -> None:
    shutil.rmtree(OUTPUT, ignore_errors=True)
    OUTPUT.mkdir()
    torch.manual_seed(0)
    model = keyword_spotter_lstm()
    checkpoint = OUTPUT / "keyword_spotter.pt"
    torch.save({"epoch": 12, "model_state_dict": model.state_dict()}, checkpoint)
    print(f"wrote a training checkpoint of {model}: {checkpoint}")

    export_dir = OUTPUT / "keyword_spotter"
    _rnnx("export", str(checkpoint), "--batch-first", "-o", str(export_dir))
    _rnnx("verify", str(export_dir))

    import rnnx

    session = rnnx.load(export_dir, "onnxruntime", provider="cpu")
    frames = np.random.default_rng(0).standard_normal((3, 250, 40), dtype=np.float32)
    zeros = np.zeros((2, 3, 64), dtype=np.float32)
    outputs = session.run({"input": frames, "h0": zeros, "c0": zeros})
    with torch.inference_mode():
        expected, _ = model(torch.from_numpy(frames))
    error = np.abs(outputs["output"] - expected.numpy()).max()
    shape = list(outputs["output"].shape)
    print(f"\nonnxruntime ({', '.join(session.providers)}) on 3 clips x 250 frames: output {shape}")
    print(f"max abs difference to eager PyTorch: {error:.1e}")
    print(f"rnnx {rnnx.__version__}: artifacts in {export_dir}/")


if __name__ == "__main__":
    main()
