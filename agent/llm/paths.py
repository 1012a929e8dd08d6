"""Which paths of the workspace the model may name, and how its files are opened.

A path from the model is text to check before it becomes a file name: a non-empty relative
path of at most MAX_PATH_CHARS characters, valid UTF-8, no NUL or other control character, no
backslash, each component at most 255 bytes, no `..` that climbs out, no link that leads out.

Some names are refused because something other than Python's import of the port reads them:

- `.git` at any depth, for every tool (reading too): the repository's metadata (a pointer file at
  the top, a nested repository anywhere else). Compared the way git itself does on case-folding
  or 8.3-name file systems (`.GIT`, `.git.`, `git~1`, Unicode characters HFS+ ignores).
- Written only by the tool itself (the model may read them): files git reads from the tree
  (`.gitattributes` can name filters and diff drivers, `.gitmodules` submodules, `.gitignore`
  decides what a checkpoint records and what a revert removes); files Python or pytest load on
  their own in the sandbox (`sitecustomize.py`, `usercustomize.py`, `conftest.py`, `pytest.ini`,
  `pyproject.toml`, `setup.cfg`, `tox.ini`), which would run before the code under test; bytecode
  (`__pycache__`, `.pyc`), which Python prefers to the source the checks read; and the run's own
  marker file. ruff is never pointed at workspace config (it runs `--isolated`).
"""

from __future__ import annotations

import os
import stat
import unicodedata
from pathlib import Path

MAX_PATH_CHARS = 1024
MAX_COMPONENT_BYTES = 255
RUN_MARKER = ".integrate-run"  # agent.workspace.MARKER, named here to keep this module free of git
READ_ONLY_NAMES = frozenset({
    ".gitattributes", ".gitmodules", ".gitignore",
    "sitecustomize.py", "usercustomize.py", "conftest.py", "pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini",
    "__pycache__", RUN_MARKER,
})
READ_ONLY_SUFFIXES = (".pyc", ".pyo")


class PathRefused(Exception):
    """A path the model may not use; the message says why, in one line."""


def _folded(component: str) -> str:
    """A component as git compares it against `.git` on forgiving file systems: case folded,
    characters that HFS+ ignores removed, trailing dots and spaces (NTFS) dropped."""
    kept = "".join(c for c in component if unicodedata.category(c) != "Cf")
    return kept.casefold().rstrip(". ")


def is_git_name(component: str) -> bool:
    folded = _folded(component)
    return folded == ".git" or (folded.startswith("git~") and folded[4:].isdigit())


def write_refusal(component: str) -> str | None:
    """Why the model may not write a file with this component in its path, or None."""
    folded = _folded(component)
    if folded in READ_ONLY_NAMES or folded.endswith(READ_ONLY_SUFFIXES):
        return f"{component} is read by git, Python or pytest on its own, or is the tool's own; only the tool writes it"
    return None


def check_text(path: object) -> list[str]:
    """The components of a path the model gave, or PathRefused."""
    if not isinstance(path, str) or not path:
        raise PathRefused("path must be a non-empty string relative to the workspace")
    if len(path) > MAX_PATH_CHARS:
        raise PathRefused(f"path longer than {MAX_PATH_CHARS} characters")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise PathRefused("path is not valid UTF-8 (a lone surrogate)") from None
    bad = next((c for c in path if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise PathRefused(f"path contains the control character {bad!r}")
    if "\\" in path:
        raise PathRefused("use / to separate folders (a backslash is refused)")
    if os.path.isabs(path):
        raise PathRefused(f"absolute paths are refused: {path} (use a path relative to the workspace)")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PathRefused(f"path leaves the workspace: {path}")
            parts.pop()
            continue
        if len(part.encode()) > MAX_COMPONENT_BYTES:
            raise PathRefused(f"a path component is longer than {MAX_COMPONENT_BYTES} bytes")
        parts.append(part)
    return parts


class Workspace:
    """A folder the tools may touch, and nothing outside it."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def resolve(self, path: object, write: bool = False) -> Path:
        """The real path for a path the model gave; PathRefused when the policy says no."""
        parts = check_text(path)
        target = self.root.joinpath(*parts).resolve()  # follows links, so one that leads out shows
        if target != self.root and self.root not in target.parents:
            raise PathRefused(f"path leaves the workspace: {path}")
        for names in (parts, target.relative_to(self.root).parts):  # as written, and where links lead
            if any(is_git_name(p) for p in names):
                raise PathRefused(f"{path}: the repository's own files (.git) are off limits")
            if write:
                why = next(filter(None, map(write_refusal, names)), None)
                if why:
                    raise PathRefused(f"{path}: {why}")
        return target

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def hidden(self, rel_parts: tuple[str, ...]) -> bool:
        """Left out of listings and searches: git's metadata and bytecode caches."""
        return any(is_git_name(p) or p == "__pycache__" for p in rel_parts)


def open_regular(path: Path, flags: int, mode: int = 0o644) -> int:
    """A descriptor for `path` only if it is a regular file reached without a final link (no FIFO,
    device or socket can stall or flood the tool)."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), mode)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PathRefused(f"{path.name} is not a regular file")
    return fd


def read_capped(path: Path, limit: int) -> tuple[bytes, int]:
    """(the first `limit` bytes, the file's size) of a regular file."""
    fd = open_regular(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks), size
    finally:
        os.close(fd)


def write_text(path: Path, data: bytes) -> None:
    """Replace a regular file's content (or create it), never through a link."""
    if path.is_symlink():
        raise PathRefused(f"{path.name} is a link; the tools never write through one")
    fd = open_regular(path, os.O_WRONLY | os.O_CREAT)
    try:
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
