"""The one rule for every reader of an export directory (an export is untrusted input).

- artifact paths resolve inside the directory, symlinks included (`inside`);
- names that come from artifacts (tensor names) are never path components: where one becomes
  a file name it is escaped (`file_name`), and a name the user gives for a directory is
  checked (`check_directory_name`);
- copies never follow a link out of the directory (`copy_export`).

The C++ runners follow the same rule (cpp/tools/runner.cpp: artifact_path, file_name).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

from rnnx.core.errors import RnnxError

# Bytes a tensor name keeps as they are in a file name; every other byte becomes %XX
# (percent-encoding, so the escape is reversible and two names never share a file).
_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")


def inside(export_dir: str | os.PathLike, name: str) -> Path:
    """`export_dir / name`, refused unless it resolves inside the directory (symlinks too)."""
    path = Path(export_dir) / name
    if not path.resolve().is_relative_to(Path(export_dir).resolve()):
        raise RnnxError(f"'{path}' points outside the export directory '{export_dir}'")
    return path


def file_name(name: str) -> str:
    """A tensor name as one file name component: [A-Za-z0-9_.-] kept, every other byte
    (/, \\, %, NUL, control characters...) as %XX, and a leading '.' as %2E (so '..', '.' and
    hidden names cannot be made). `unescape_file_name` reverses it."""
    encoded = "".join(
        chr(b) if b in _PLAIN and not (i == 0 and b == ord(".")) else f"%{b:02X}"
        for i, b in enumerate(name.encode("utf-8", "surrogatepass"))
    )
    return encoded or "%"  # the empty name: a name no other name escapes to


def unescape_file_name(encoded: str) -> str:
    from urllib.parse import unquote

    return "" if encoded == "%" else unquote(encoded, errors="surrogatepass")


def check_directory_name(name: str, option: str) -> str:
    """A name the user gives that becomes one directory (a Triton model name): letters, digits,
    '_', '-' and '.', not starting with '.' (so never '.', '..', a path or a hidden name)."""
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", name):
        raise RnnxError(
            f"{option} {name!r} is not a plain name: use letters, digits, '_', '-' and '.', "
            "not starting with '.'"
        )
    return name


def copy_export(source: str | os.PathLike, destination: str | os.PathLike) -> None:
    """Copy an export directory without following links out of it: a symlink that resolves
    inside is copied as the file it points to; one that leads outside, a link to a directory
    and anything that is not a regular file are errors. Hidden entries are left out."""
    source = Path(source)
    _copy_tree(source, Path(destination), source.resolve(), source)


def _copy_tree(directory: Path, destination: Path, root: Path, source: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if stat.S_ISDIR(entry.lstat().st_mode):  # a real directory (lstat: not a link to one)
            _copy_tree(entry, destination / entry.name, root, source)
            continue
        resolved = entry.resolve()
        if not resolved.is_relative_to(root):
            raise RnnxError(
                f"'{entry}' is a link to '{resolved}', outside the export directory "
                f"'{source}': not copied (replace the link with the file)"
            )
        try:
            mode = resolved.stat().st_mode
        except OSError:
            raise RnnxError(f"'{entry}' is a broken link: not copied") from None
        if not stat.S_ISREG(mode):
            raise RnnxError(f"'{entry}' is not a regular file (a link to a directory?): not copied")
        shutil.copyfile(resolved, destination / entry.name)
