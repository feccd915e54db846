"""The troubleshooting page's list of messages, collected from rnnx's own code at build time.

Every message rnnx can refuse with is an RnnxError (or a subclass) constructed somewhere in
rnnx/; every hazard `rnnx doctor` reports is a `Finding(hazard, message, fix)`; every warning
of rnnx's own is a `warnings.warn(..., RnnxWarning)`. This module reads them from the source
(ast, nothing is imported or run) so the page lists exactly what the code says: a message that
changes, appears or goes away changes the page with it.

MkDocs runs `on_page_markdown` as a hook (mkdocs.yml `hooks:`); tests/docs import `collect`.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rnnx"
MARKER = "<!-- rnnx:messages -->"
BASE = "RnnxError"

# A message says how to fix the problem after a "fix:", or in a clause that starts with one
# of these verbs (`...; pass --checkpoint if it moved`, `...: export it again`).
_VERBS = """
    add allow ask build call check choose compute convert declare delete derive drop export give
    install keep list load make move name omit open pass pick put rebuild re-export remove rename
    run see send set start try upgrade use verify write
""".split()  # noqa: SIM905 (a list of words reads best as words)
_FIX_CLAUSE = re.compile(r"(?:^|[;:(]\s+|, or |; or |: )((?:" + "|".join(_VERBS) + r")\b.*)")


@dataclasses.dataclass(frozen=True)
class Message:
    kind: str  # an RnnxError subclass, "RnnxWarning" or "doctor"
    text: str  # the message, with ‹name› where the code fills in a value
    module: str  # rnnx/exporter/checkpoint.py
    function: str
    line: int
    fix: str = ""


def error_classes(package: Path = PACKAGE, base: str = BASE) -> dict[str, str]:
    """RnnxError (or `base`) and its subclasses anywhere in the package -> their docstrings,
    base first."""
    classes: dict[str, tuple[list[str], str]] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
                classes[node.name] = (bases, ast.get_docstring(node) or "")
    found = {base: classes[base][1]}
    changed = True
    while changed:
        changed = False
        for name, (bases, doc) in classes.items():
            if name not in found and any(b in found for b in bases):
                found[name] = doc
                changed = True
    return found


def collect(package: Path = PACKAGE) -> list[Message]:
    """Every message in the package: errors, rnnx's warnings and doctor's hazards."""
    errors = error_classes(package)
    warns = error_classes(package, "RnnxWarning")
    messages: list[Message] = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        module = path.relative_to(package.parent).as_posix()
        for function, node in _calls(tree):
            messages.extend(_message(node, function, module, errors, warns))
    return sorted(messages, key=lambda m: (m.module, m.line))


def _calls(tree: ast.AST) -> Iterator[tuple[ast.FunctionDef | None, ast.Call]]:
    def visit(node: ast.AST, function: ast.FunctionDef | None) -> Iterator:
        for child in ast.iter_child_nodes(node):
            inner = (
                child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            )
            if isinstance(child, ast.Call):
                yield function, child
            yield from visit(child, inner)

    yield from visit(tree, None)


def _message(
    call: ast.Call,
    function: ast.FunctionDef | None,
    module: str,
    errors: dict[str, str],
    warns: dict[str, str],
) -> list[Message]:
    name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
    where = {"module": module, "function": function.name if function else "", "line": call.lineno}
    if name in errors and call.args:
        texts = _texts(call.args[0], function)
        return [Message(name, text, fix=_fix(text), **where) for text in texts]
    category = call.args[1] if name == "warn" and len(call.args) >= 2 else None
    if name == "warn_user" and call.args:  # rnnx/core/errors.py: an RnnxWarning at the caller
        category = ast.Name("RnnxWarning")
    if isinstance(category, ast.Name) and category.id in warns:
        return [
            Message("RnnxWarning", t, fix=_fix(t), **where) for t in _texts(call.args[0], function)
        ]
    if name == "Finding" and len(call.args) == 3:
        hazard, message, fix = (_texts(a, function)[0] for a in call.args)
        return [Message("doctor", f"{hazard}: {message}", fix=fix, **where)]
    return []


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _texts(node: ast.AST, function: ast.FunctionDef | None) -> list[str]:
    """The message a node builds, as text; a variable is followed to its assignments in the
    same function (each one a message)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return ["".join(_part(v, function) for v in node.values)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [a + b for a in _texts(node.left, function) for b in _texts(node.right, function)]
    if isinstance(node, ast.IfExp):
        return _texts(node.body, function) + _texts(node.orelse, function)
    if isinstance(node, ast.Name) and function is not None:
        assigned = [
            a.value
            for a in ast.walk(function)
            if isinstance(a, ast.Assign) and any(_is_name(t, node.id) for t in a.targets)
        ]
        texts = [t for value in assigned for t in _texts(value, None)]
        if texts:
            return texts
    return [f"‹{_placeholder(node)}›"]


def _part(node: ast.AST, function: ast.FunctionDef | None) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    assert isinstance(node, ast.FormattedValue)
    inner = node.value
    if isinstance(inner, (ast.Constant, ast.JoinedStr, ast.IfExp)):
        return " / ".join(dict.fromkeys(_texts(inner, None)))
    return f"‹{_placeholder(inner)}›"


def _placeholder(node: ast.AST) -> str:
    """A short name for the value a message fills in: `path`, `entry.modules`, `missing`
    for `_listed(sorted(missing))`."""
    if isinstance(node, (ast.Name, ast.Attribute)) and "(" not in ast.unparse(node):
        return ast.unparse(node).removeprefix("self.")
    callees = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and id(n) not in callees]
    return names[-1] if names else "…"


def _fix(text: str) -> str:
    if "fix:" in text:
        return text.split("fix:", 1)[1].strip()
    match = _FIX_CLAUSE.search(text)
    return match.group(1).strip() if match else ""


# The areas of the package a long list of messages is split by (rnnx/<area>/... or rnnx/<area>.py)
AREAS = {
    "cli": "command line options",
    "core": "export directories, manifests and metadata",
    "exporter": "exporting",
    "pipeline": "exporting",
    "doctor": "exporting",
    "formats": "opening an export",
    "runtimes": "running and streaming",
    "run": "running and streaming",
    "compare": "verifying",
    "benchmark": "benchmarking and tune",
    "tune": "benchmarking and tune",
    "serving": "serving",
    "cpp_build": "C++ build",
    "inspect": "inspect and env",
    "env": "inspect and env",
}
_SPLIT_ABOVE = 30  # rows: a longer section gets a heading per area


def render(messages: list[Message], errors: dict[str, str]) -> str:
    """Markdown: one section per kind (its meaning from the class docstring; the subclasses
    first, the base RnnxError last), one table row per message with the fix it gives and where
    the code raises it; a long section split by the area of the package that raises them."""
    sections = []
    kinds = [*list(errors)[1:], "RnnxWarning", "doctor", BASE]
    meanings = {
        **errors,
        "RnnxWarning": "rnnx's own warnings (`rnnx: warning: ...` on the command line): the "
        "export, the benchmark or the session goes on, and says what it left out, what it fell "
        "back to, or what looks wrong.",
        "doctor": "Export hazards that `rnnx doctor` reports (and `rnnx export` warns about "
        "before exporting): `hazard: message`, then the fix.",
    }
    for kind in kinds:
        rows = [m for m in messages if m.kind == kind]
        if not rows:
            continue
        title = {"doctor": "rnnx doctor hazards", BASE: f"{BASE} (all other messages)"}
        lines = [f"### {title.get(kind, kind)}", "", _escape(meanings[kind]), ""]
        if len(rows) > _SPLIT_ABOVE:
            groups: dict[str, list[Message]] = {}
            for m in rows:
                groups.setdefault(AREAS.get(_area(m.module), "other"), []).append(m)
            for area in dict.fromkeys(AREAS.values()) | {"other": None}:
                if area in groups:
                    lines += [f"#### {area.capitalize()}", "", *_table(groups[area]), ""]
        else:
            lines += _table(rows)
        sections.append("\n".join(lines).rstrip())
    return "\n\n".join(sections) + "\n"


def _area(module: str) -> str:
    return module.split("/")[1].removesuffix(".py")


def _table(rows: list[Message]) -> list[str]:
    """One row per message, however many places raise it."""
    places: dict[str, list[str]] = {}
    for m in rows:
        where = f"`{m.module}:{m.function}`" if m.function else f"`{m.module}`"
        if where not in places.setdefault(m.text, []):
            places[m.text].append(where)
    unique = {m.text: m for m in rows[::-1]}  # the first of each text, in order
    lines = ["| message | fix | raised in |", "|---|---|---|"]
    for text in places:
        lines.append(
            f"| {_escape(text)} | {_escape(unique[text].fix)} | {', '.join(places[text])} |"
        )
    return lines


def _escape(text: str) -> str:
    """Markdown-safe table cell text: code spans (`...`) kept, everything else escaped."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unbalanced backtick: no code spans
        parts = [text.replace("`", "\\`")]
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"`{part.replace('|', '¦')}`")
        else:
            out.append(re.sub(r"([\\*_\[\]<>|#])", r"\\\1", part).replace("\n", " "))
    return "".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs hook)
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render(collect(), error_classes()))
