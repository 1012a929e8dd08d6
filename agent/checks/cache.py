"""The findings cache: one entry per file content, one result per rule, each result keyed by
every other file (or derived index) it was computed from.

A rule that reads another file (an `__init__`, the source of a `# Copied from` block, a dummy
objects file) records it through `FileContext.read_other`/`depend`; its cached result is reused
only while each of those still has the digest it had. So fixing a registration in an `__init__`
or editing a copy's source is seen on the next warm run without `--no-cache`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from agent.checks.tree import stamp

# Derived dependencies ("name:arg"): a digest function per name, registered by the module that
# builds the derived thing (the copy index registers "copies").
PROVIDERS: dict[str, Callable[[str], str]] = {}


def cache_dir() -> Path:
    base = os.environ.get("INTEGRATE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "integrate"
    )
    return Path(base) / "checks"


@lru_cache(maxsize=1)
def code_version() -> str:
    """Digest of the checks' own code: a changed rule invalidates every entry."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for f in sorted(here.rglob("*.py")):
        h.update(f.relative_to(here).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


@lru_cache(maxsize=4096)
def _file_digest(path: str, st: tuple) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:20]
    except OSError:
        return "missing"


def digest(dep: str) -> str:
    """Current digest of a dependency: a file path, or a derived "name:arg"."""
    if dep.startswith("/"):
        return _file_digest(dep, stamp(Path(dep))) if os.path.exists(dep) else "missing"
    name, _, arg = dep.partition(":")
    provider = PROVIDERS.get(name)
    return provider(arg) if provider else "unknown"


def digests(deps: set[str]) -> dict[str, str]:
    return {d: digest(d) for d in sorted(deps)}


def still_valid(recorded: dict[str, str]) -> bool:
    return all(digest(d) == v for d, v in recorded.items())


class Entry:
    """Cached results of one file content: {"syntax": finding|None, "rules": {id: {"findings", "deps"}}}."""

    def __init__(self, root: Path | None, path: str, data: bytes) -> None:
        self.file = None
        self.data: dict = {"syntax": None, "parsed": False, "rules": {}}
        if root is not None:
            key = hashlib.sha256(path.encode() + b"\0" + data).hexdigest()
            self.file = root / key[:2] / f"{key}.json"
            try:
                self.data = json.loads(self.file.read_text())
            except (OSError, ValueError):
                pass
        self.dirty = False

    def result(self, rule_id: str) -> list[dict] | None:
        got = self.data["rules"].get(rule_id)
        if got is None or not still_valid(got["deps"]):
            return None
        return got["findings"]

    def store(self, rule_id: str, findings: list[dict], deps: set[str]) -> None:
        # without a cache folder nothing is saved, so the dependencies' digests are not needed
        self.data["rules"][rule_id] = {"findings": findings, "deps": digests(deps) if self.file is not None else {}}
        self.dirty = True

    def save(self) -> None:
        if self.file is None or not self.dirty:
            return
        tmp = self.file.with_suffix(f".{os.getpid()}.tmp")
        text = json.dumps(self.data)
        try:
            try:
                tmp.write_text(text)
            except FileNotFoundError:  # the folder is made when first missing, not asked for per file
                self.file.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_text(text)
            os.replace(tmp, self.file)
        except OSError:
            pass
