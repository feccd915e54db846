"""The guide builds with `mkdocs build --strict` (a broken link or anchor, a page missing from
the nav, an API reference that does not resolve: each fails it), and its troubleshooting page
lists the messages the code raises."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _hook():
    spec = importlib.util.spec_from_file_location(
        "troubleshooting_hook", ROOT / "docs" / "hooks" / "troubleshooting.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_site_builds_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # Material's notice about its successor
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    page = (site / "troubleshooting" / "index.html").read_text()
    assert "rnnx:messages" not in page  # the hook replaced the marker
    assert "recorded in the manifest not found" in page  # one of CheckpointError's messages
    assert (site / "api" / "index.html").read_text().count('class="doc doc-heading"') >= 5


# Messages built from a value alone (a caller's message, a library's error): listed, with
# nothing of their own to say.
OPAQUE = {
    ("rnnx/benchmark/cpp_runners.py", "runner_latency"),  # the C++ runner's own error output
    ("rnnx/cpp_build.py", "_require"),  # its callers' messages, each listed where it is built
    ("rnnx/exporter/onnx_export.py", "build_onnx"),  # the exporter's diagnosis (diagnose.py)
    ("rnnx/pipeline.py", "export"),  # a doctor Finding, listed with the hazards
    ("rnnx/pipeline.py", "_write"),  # the streamability Finding, listed with the hazards
    ("rnnx/pipeline.py", "_stage"),  # likewise, where the staged export warns with it
    ("rnnx/exporter/routes.py", "_legacy"),  # the legacy exporter's own error, first line
    # runtime_missing(): how to install a runtime's tool, listed where it is built
    ("rnnx/formats.py", "load"),
    ("rnnx/formats.py", "verification_sessions"),
    ("rnnx/runtimes/js_host.py", "__init__"),
    ("rnnx/web_bundle.py", "write_site"),
    ("rnnx/core/errors.py", "warn_user"),  # passes its callers' warnings on, listed at them
}


def test_every_error_the_code_raises_is_on_the_page() -> None:
    hook = _hook()
    errors = hook.error_classes()
    messages = hook.collect()
    # an independent count: every `raise SomeError(` of an rnnx error class in the package
    raise_sites = {
        (path.relative_to(ROOT).as_posix(), number)
        for path in (ROOT / "rnnx").rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if (m := re.search(r"raise (\w+)\(", line)) and m[1] in errors
    }
    collected = {(m.module, m.line) for m in messages}
    assert raise_sites <= collected, sorted(raise_sites - collected)
    opaque = {
        (m.module, m.function) for m in messages if not re.sub("‹[^›]*›", "", m.text).strip(" :")
    }
    assert opaque <= OPAQUE, sorted(opaque - OPAQUE)
    page = hook.render(messages, errors)
    assert all(f"### {kind}" in page for kind in errors if any(m.kind == kind for m in messages))


def test_demo_ends_by_pointing_at_the_guide(monkeypatch) -> None:
    from rnnx.demo import _guide

    monkeypatch.chdir(ROOT)  # where `make demo` runs
    assert _guide() == "docs/quickstart.md"
    assert (ROOT / _guide()).is_file()
