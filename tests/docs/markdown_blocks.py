"""The code blocks of a Markdown page, with the directives that say how the tests run them.

A directive is an HTML comment, invisible on GitHub and in the built site:
- `<!-- docs-test: skip (reason) -->` on the line before a block: not run; the reason is required
  (the tests list these, and keep the list short);
- `<!-- docs-test: exit N -->` before a shell block: its commands are expected to fail with N
  (the troubleshooting page shows refusals);
- `<!-- docs-test: file NAME -->` before a block: the block is a file the next blocks use
  (a module of the reader's own, say); the tests write it as NAME instead of running it;
- `<!-- docs-test: fresh (...) -->` anywhere else: the page's blocks start in an empty directory
  instead of the prepared one (tests/docs/conftest.py).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

PYTHON = {"python", "py"}
SHELL = {"bash", "sh", "shell", "console"}
TEXT = {"", "text"}  # output shown to the reader, diagrams: not code

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<word>\w+)\s*(?P<rest>.*?)\s*-->\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    skip: str | None = None  # the reason
    exit_code: int = 0
    file: str | None = None  # the block is this file's content

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


@dataclasses.dataclass(frozen=True)
class Page:
    path: Path
    blocks: tuple[Block, ...]
    fresh: bool


def parse(path: Path) -> Page:
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    fresh = False
    pending: dict[str, str] = {}
    i = 0
    while i < len(lines):
        directive = _DIRECTIVE.match(lines[i])
        fence = _FENCE.match(lines[i])
        if directive:
            word, rest = directive["word"], directive["rest"]
            if word == "fresh":
                fresh = True
            elif word in ("skip", "exit", "file"):
                if word == "skip" and not rest.strip("() "):
                    raise ValueError(f"{path.name}:{i + 1}: docs-test: skip needs a reason")
                pending[word] = rest.strip()
            else:
                raise ValueError(f"{path.name}:{i + 1}: unknown directive docs-test: {word}")
        elif fence:
            indent, marker = len(fence["indent"]), fence["fence"]
            language = (fence["info"].split() or [""])[0].lower()
            start = i
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(marker):
                body.append(lines[i][indent:] if lines[i][:indent].isspace() else lines[i])
                i += 1
            blocks.append(Block(
                path, start + 1, language, "\n".join(body) + "\n",
                skip=pending.get("skip"), exit_code=int(pending.get("exit") or 0),
                file=pending.get("file"),
            ))  # fmt: skip
            pending = {}
        elif lines[i].strip():
            pending = {}  # a directive applies to the block right after it
        i += 1
    return Page(path, tuple(blocks), fresh)


def commands(block: Block) -> list[str]:
    """A shell block's commands: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block.code)
    return [
        line.strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
