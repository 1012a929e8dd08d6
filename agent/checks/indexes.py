"""Package-wide facts some rules need (every class name of a diffusers tree), built once per run from the text of the tree and registered as derived cache
dependencies digested by the tree's file signature."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from agent.checks import cache

# Matched against "\n" + text: a literal first character lets the regex engine jump from line break
# to line break (a `^` under re.M is tried at every character); the same matches.
_CLASS = re.compile(r"\n[ \t]*class[ \t]+(\w+)")

# Memo for one run: the engine calls `new_run()` before each check, so a long-lived process
# (the refinement loop checks after every edit) never reads a stale index.
_MEMO: dict[tuple, object] = {}


def new_run() -> None:
    from agent.checks.tree import _package_root_of, _resolved

    _MEMO.clear()
    _package_root_of.cache_clear()
    _resolved.cache_clear()


def _memo(key: tuple, build):
    if key not in _MEMO:
        _MEMO[key] = build()
    return _MEMO[key]


def python_files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        out += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py")]
    return out


def signature(root: Path) -> str:
    """Digest of every Python file's name, size and modification time under `root`."""

    def build():
        h = hashlib.sha256()
        for f in python_files(root):
            try:
                st = f.stat()
            except OSError:
                continue
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:20]

    return _memo(("sig", str(root)), build)


def _texts(root: Path) -> list[tuple[Path, str]]:
    def build():
        out = []
        for f in python_files(root):
            try:
                out.append((f, f.read_text(encoding="utf-8", errors="replace")))
            except OSError:
                continue
        return out

    return _memo(("texts", str(root)), build)


_BASES = re.compile(r"\n[ \t]*class[ \t]+\w+[ \t]*\(([^)]*)\)")  # on "\n" + text, as _CLASS


def base_names(ctx, root: Path) -> frozenset[str]:
    """Every name used as a base class anywhere in the tree (last dotted segment)."""
    ctx.depend(f"tree:{root}")
    return _memo(("bases", str(root)), lambda: frozenset(
        b.strip().split(".")[-1] for _, t in _texts(root) for group in _BASES.findall("\n" + t) for b in group.split(",")
        if b.strip() and "=" not in b
    ))


def class_files(ctx, root: Path) -> dict[str, Path]:
    """Class name -> the file defining it (the first one) in the tree."""
    ctx.depend(f"tree:{root}")

    def build():
        out: dict[str, Path] = {}
        for path, text in _texts(root):
            for name in _CLASS.findall("\n" + text):
                out.setdefault(name, path)
        return out

    return _memo(("class-files", str(root)), build)


def class_names(ctx, root: Path) -> frozenset[str]:
    ctx.depend(f"tree:{root}")
    return _memo(("classes", str(root)), lambda: frozenset(n for _, t in _texts(root) for n in _CLASS.findall("\n" + t)))


cache.PROVIDERS["tree"] = lambda arg: signature(Path(arg))
