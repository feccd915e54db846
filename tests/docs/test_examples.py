"""Every code block of the guide (docs/*.md) and of README.md runs here, so an example that
stops working fails the tests.

Python blocks of a page run in order in one namespace; shell blocks run each `rnnx ...` line
through the CLI in this process (as `python -m rnnx` would: the page's directory first on
sys.path). Both run in a copy of the quick start's directory (conftest.py), or in an empty one
for a page marked `fresh`. Blocks of other languages (C++, CMake) must say why they are not run
(`<!-- docs-test: skip (reason) -->`, tests/docs/markdown_blocks.py)."""

from __future__ import annotations

import shlex
import shutil
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnx.cli import main
from rnnx.core.errors import RnnxWarning
from tests.docs.markdown_blocks import PYTHON, SHELL, TEXT, Block, Page, commands, parse

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Blocks that cannot run in the tests, each with its reason in the page. Kept short: a new one
# needs a reason that holds (CUDA, a C++ toolchain, a long-running server), and this number.
MAX_SKIPPED = 14  # 14: the browser page's JavaScript (run in Chromium by test_web_bundle.py)


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_examples_run(path: Path, docs_workspace: Path, tmp_path: Path, monkeypatch) -> None:
    page = parse(path)
    workdir = tmp_path / "work"
    if page.fresh:
        workdir.mkdir()
    else:
        shutil.copytree(docs_workspace, workdir, symlinks=True)
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(workdir))
    namespace: dict = {"__name__": "__main__"}  # as in the reader's own script
    before = set(sys.modules)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")  # what a script shows: each warning once
            _run_blocks(page, namespace)
    finally:
        for name in set(sys.modules) - before:  # modules the page wrote (my_models.py)
            if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(workdir)):
                del sys.modules[name]
    # Quiet by default: a reader's script shows rnnx's own warnings, and no library's; a
    # library's deprecation notice about its own code is hidden by Python's default filters
    # (they show DeprecationWarning for code in __main__ only: here, the page's blocks).
    shown = [
        f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}"
        for w in caught
        if not issubclass(w.category, RnnxWarning)
        and not (issubclass(w.category, DeprecationWarning) and ".md:" not in w.filename)
    ]
    assert not shown, "\n".join(shown)


def _run_blocks(page: Page, namespace: dict) -> None:
    for block in page.blocks:
        if block.skip is not None or block.language in TEXT:
            continue
        if block.file is not None:
            Path(block.file).write_text(block.code)
        elif block.language in PYTHON:
            exec(compile(block.code, block.where, "exec"), namespace)
        elif block.language in SHELL:
            _run_shell(block)
        else:
            pytest.fail(f"{block.where}: a {block.language} block that is not run must say "
                        "why: <!-- docs-test: skip (reason) -->")  # fmt: skip


def _run_shell(block: Block) -> None:
    for command in commands(block):
        words = shlex.split(command, comments=True)
        env = {}  # `PYTHONPATH=. rnnx ...`: the page's directory is on sys.path already
        while words and "=" in words[0] and not words[0].startswith("-"):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        if not words or words[0] != "rnnx":
            pytest.fail(f"{block.where}: `{command}` is not an rnnx command; mark the block "
                        "<!-- docs-test: skip (reason) --> if it cannot run here")  # fmt: skip
        showwarning = warnings.showwarning
        try:
            result = CliRunner(env=env).invoke(main, words[1:], catch_exceptions=False)
        finally:
            warnings.showwarning = showwarning  # the CLI installs its own printer
        assert result.exit_code == block.exit_code, (
            f"{block.where}: `{command}` exited {result.exit_code}, expected "
            f"{block.exit_code}:\n{result.output}"
        )


def test_skipped_blocks_are_few_and_say_why() -> None:
    skipped = [b for path in PAGES for b in parse(path).blocks if b.skip is not None]
    assert all(b.skip.strip("() ") for b in skipped)
    assert len(skipped) <= MAX_SKIPPED, "\n".join(f"{b.where}: {b.skip}" for b in skipped)
