"""`rnnx web DIR -o SITE`: an export as a static site that runs in the browser.

The site holds the ONNX model, onnxruntime-web's WASM build (copied: no CDN), rnnx.mjs (the ES
module the "web" runtime is verified through: load, run, stream().step(), reset, state
save/restore, the signature's input checks and the NaN policy) and a demo page that streams a
generated signal through the model and plots it. Any static file server serves it
(`python -m http.server -d SITE`); WASM threads need cross-origin isolation headers, so the
demo runs one thread.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from rnnx.core.errors import RnnxError
from rnnx.core.manifest import read_manifest
from rnnx.core.version import __version__
from rnnx.formats import RUNTIMES, artifact_path, runtime_missing
from rnnx.runtimes.js_host import JS_DIR, ORT_WEB_FILES, ort_web_dist
from rnnx.runtimes.non_finite import graph_hides_nan

# what the site holds besides the model: rnnx/js files copied as they are
SITE_FILES = ("rnnx.mjs", "demo.html", "demo.mjs")
MARKER = "model/rnnx.json"  # a site written by `rnnx web` (which --force may overwrite)


@dataclasses.dataclass(frozen=True)
class WebOptions:
    format: str = "onnx"  # onnx or onnx-int8
    force: bool = False  # replace an existing site written by `rnnx web`


def write_site(export_dir: str | os.PathLike, site: str | os.PathLike,
               options: WebOptions = WebOptions()) -> Path:  # fmt: skip
    """Write the static site for `export_dir` to `site`; returns its index page."""
    manifest = read_manifest(export_dir)
    runtime = RUNTIMES["web"]
    if options.format not in ("onnx", "onnx-int8"):
        raise RnnxError(f"rnnx web ships onnx or onnx-int8, not {options.format!r}")
    model = artifact_path(export_dir, manifest, options.format, runtime)
    missing = not all((ort_web_dist() / name).is_file() for name in ORT_WEB_FILES)
    if missing:  # the browser is not needed to write the site, onnxruntime-web is
        raise RnnxError(runtime_missing(runtime) or "onnxruntime-web is missing")
    site = Path(site)
    _prepare(site, options.force)
    (site / "ort").mkdir(parents=True)
    (site / "model").mkdir()
    for name in ORT_WEB_FILES:
        shutil.copyfile(ort_web_dist() / name, site / "ort" / name)
    for name in SITE_FILES:
        shutil.copyfile(JS_DIR / name, site / name)
    shutil.copyfile(model, site / "model" / model.name)
    description = {
        "schema": 1,
        "rnnx_version": __version__,
        "format": options.format,
        "file": model.name,
        "signature": manifest.signature.to_dict(),
        # whether onnxruntime's kernels hide a NaN input (rnnx.mjs then gives the sequence NaN)
        "hides_nan": graph_hides_nan(model),
    }
    (site / MARKER).write_text(json.dumps(description, indent=2) + "\n")
    return site / "demo.html"


def _prepare(site: Path, force: bool) -> None:
    if not site.exists():
        return
    if not site.is_dir() or any(site.iterdir()):
        if not (force and (site / MARKER).is_file()):
            what = "a site written by rnnx web: pass --force to replace it"
            reason = what if (site / MARKER).is_file() else "not empty"
            raise RnnxError(f"'{site}' exists and is {reason}")
        shutil.rmtree(site)
