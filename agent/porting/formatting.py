"""Format generated code with ruff, as diffusers' own `make style` does.

ruff only parses the code (it never runs it), so this is safe on untrusted code.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def ruff_command() -> list[str] | None:
    exe = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    return [exe] if Path(exe).exists() else None


def format_file(path: Path, line_length: int = 119) -> str:
    """Sort imports and format `path` in place. Returns "formatted" or why it was skipped."""
    ruff = ruff_command()
    if ruff is None:
        return "skipped: ruff not found"
    common = ["--no-cache", "--isolated", f"--line-length={line_length}"]
    fix = subprocess.run([*ruff, "check", *common, "--select", "I", "--fix", "--quiet", str(path)], capture_output=True, text=True)
    fmt = subprocess.run([*ruff, "format", *common, "--quiet", str(path)], capture_output=True, text=True)
    if fmt.returncode != 0:
        return f"skipped: ruff format failed ({(fmt.stderr or fix.stderr).strip().splitlines()[-1:]})"
    return "formatted"
