"""Shared by the sandbox test modules: untrusted code as a command, and a fresh workspace."""

import sys
import textwrap
from pathlib import Path


def py(code: str) -> list[str]:
    """`code` (dedented) as a python command line."""
    return [sys.executable, "-c", textwrap.dedent(code)]


def new_workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws
