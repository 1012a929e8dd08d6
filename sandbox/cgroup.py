"""A pids cgroup per sandboxed command: a hard process limit and a reliable kill-all.

RLIMIT_NPROC does not bind processes whose host uid is root, which is what bubblewrap's user
namespace maps the sandbox user to when the tool itself runs as root; a fork bomb would then
exhaust the host's PIDs. A pids cgroup limits the whole tree whatever its uid, and listing its
members finds every process, daemons included, when the run ends. cgroup v2 (with the pids
controller enabled) and v1 (a `pids` hierarchy) are both supported.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

_counter = itertools.count()


def _pids_root() -> tuple[Path, int] | None:
    """The pids hierarchy to create groups in, and its cgroup version, if writable."""
    v1 = Path("/sys/fs/cgroup/pids")
    if (v1 / "tasks").exists() and os.access(v1, os.W_OK):
        return v1, 1
    for v2 in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        controllers = v2 / "cgroup.subtree_control"
        if controllers.exists() and "pids" in controllers.read_text().split() and os.access(v2, os.W_OK):
            return v2, 2
    return None


def _remove_orphans(root: Path) -> None:
    """Empty groups left by a parent that was itself killed (its pid is in the name)."""
    for group in root.glob("integrate-*-*"):
        try:
            owner = int(group.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if owner != os.getpid() and not Path(f"/proc/{owner}").exists():
            try:
                group.rmdir()  # fails (and is skipped) if it still has members
            except OSError:
                pass


class PidsCgroup:
    def __init__(self, path: Path, version: int):
        self.path, self.version = path, version

    @classmethod
    def create(cls, max_pids: int) -> PidsCgroup | None:
        found = _pids_root()
        if found is None:
            return None
        root, version = found
        _remove_orphans(root)
        path = root / f"integrate-{os.getpid()}-{next(_counter)}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_pids))
        except OSError:
            try:
                path.rmdir()
            except OSError:
                pass
            return None
        return cls(path, version)

    def join(self) -> None:
        """Called in the child between fork and exec: move it (and its future children) in."""
        with open(self.path / "cgroup.procs", "w") as fh:
            fh.write(str(os.getpid()))

    def members(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every member until none is left (a fork bomb may race the first sweep)."""
        kill_file = self.path / "cgroup.kill"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.version == 2 and kill_file.exists():
                kill_file.write_text("1")
            pids = self.members()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        self.kill_all()
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.02)
