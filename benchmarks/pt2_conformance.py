"""The pt2 conformance table: every bare-layer configuration of the test table, every zoo model and
the published models of tests/corpus that export, exported to pt2 (torch.export + AOTInductor)
and checked, in Python and in C++.

    python benchmarks/pt2_conformance.py                 # the whole table (~15 s a model)
    python benchmarks/pt2_conformance.py --only lstm     # rows whose name contains "lstm"

Not part of `make test` (AOTInductor compiles each model for ~15 s: the whole table takes about
half an hour on 2 cores); the tests run representative rows (tests/conftest.py PT2_MODELS).
Each row is exported with verification on, so the package is checked against eager PyTorch at
batch 1, an odd batch, time 1 and a 100-step sequence (none the export example's), with zero and
random states, streamed where it streams, within 1e-5; then, where `rnnx cpp build` has built
rnnx-aoti-run and the model has one float32 data input, the C++ runner is compared with the
Python package at batch 3 x time 11 (1e-5). Prints one line a row and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test table lives in tests/

import rnnx  # noqa: E402
from rnnx.core.errors import UnsupportedModelError  # noqa: E402
from rnnx.core.signature import random_inputs  # noqa: E402
from rnnx.exporter.checkpoint import LoadOptions  # noqa: E402
from rnnx.formats import RUNTIMES  # noqa: E402
from rnnx.models.zoo import ZOO  # noqa: E402
from rnnx.pipeline import ExportOptions, export  # noqa: E402
from tests.corpus.test_corpus import CORPUS, _module  # noqa: E402
from tests.exporter.test_layers import TABLE, _build, _config_id  # noqa: E402

TRUSTED = LoadOptions(trust_checkpoint=True)  # packages this script compiled itself

ATOL = 1e-5


def rows() -> dict[str, object]:
    """name -> () -> (module, example inputs or None)."""
    table: dict[str, object] = {_config_id(c): (lambda c=c: (_build(c), None)) for c in TABLE}
    table.update({f"zoo:{name}": (lambda m=make: (m(), None)) for name, make in ZOO.items()})
    for row in CORPUS:
        if row.expect == "exports" and not row.today:
            module = _module(row.name)
            table[f"corpus:{row.name}"] = lambda m=module: (m.build(), m.example_inputs())
    return table


def check_cpp(runner: Path, directory: Path, work: Path) -> str:
    signature = rnnx.load(directory, "aoti", trust=TRUSTED).signature
    data = signature.data_inputs
    if len(data) != 1 or any(t.dtype != "float32" for t in signature.inputs):
        return "C++ n/a (not one float32 data input)"
    feeds = random_inputs(signature, {"batch": 3, "time": 11})
    expected = rnnx.load(directory, "aoti", trust=TRUSTED).run(feeds)
    np.save(work / "x.npy", feeds[data[0].name])
    states = []
    for name in signature.state_inputs:
        np.save(work / f"{name}.npy", feeds[name])
        states += ["--state", f"{name}={work / f'{name}.npy'}"]
    done = subprocess.run([str(runner), str(directory), str(work / "x.npy"), "--output-dir",
                           str(work / "y"), *states], capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"rnnx-aoti-run: {done.stderr.strip()}")
    error = max(float(np.abs(np.load(work / "y" / f"{k}.npy") - v).max())
                for k, v in expected.items())  # fmt: skip
    if error > ATOL:
        raise AssertionError(f"C++ differs from Python by {error:.2e}")
    return f"C++ max error {error:.1e}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="rows whose name contains this")
    args = parser.parse_args()
    from rnnx.cpp_build import runner_path

    runner = runner_path(RUNTIMES["cpp-aoti"])
    failed = 0
    with tempfile.TemporaryDirectory() as scratch:
        for name, make in rows().items():
            if args.only not in name:
                continue
            torch.manual_seed(0)
            directory, work = Path(scratch) / "export", Path(scratch) / "work"
            work.mkdir(exist_ok=True)
            started = time.perf_counter()
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    model, example = make()
                    result = export(model.eval(), directory, ExportOptions(formats=("pt2",),
                                    force=True), example_inputs=example)  # fmt: skip
                if "pt2" not in result.manifest.artifacts:
                    skipped = [str(w.message) for w in caught if "pt2:" in str(w.message)]
                    print(f"SKIP {name}: {skipped[0] if skipped else 'not written'}")
                    continue
                report = result.report
                assert report is not None
                worst = max(c.max_abs_error for c in report.checks if c.error is None)
                cpp = check_cpp(runner, directory, work) if runner.is_file() else "C++ not built"
                seconds = time.perf_counter() - started
                print(f"ok   {name}: max error {worst:.1e} over {len(report.checks)} checks; "
                      f"{cpp}; {seconds:.0f} s")  # fmt: skip
            except UnsupportedModelError as error:  # pt2 skipped, nothing else asked for
                print(f"SKIP {name}: {str(error).splitlines()[0]}")
            except Exception as error:  # one row's failure is reported; the table goes on
                failed += 1
                print(f"FAIL {name}: {type(error).__name__}: {str(error).splitlines()[0]}")
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
