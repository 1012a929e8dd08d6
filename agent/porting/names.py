"""Names the port uses but does not define.

Nothing the port uses may be silently dropped: after inlining, every undefined name is traced
back to the reference line that uses it. If the reference module itself does not define it
either (a name only a dead branch of the reference uses), it is listed; otherwise the port stops
there. ruff finds the undefined names (it parses, it never runs the code).
"""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

from agent.porting.formatting import ruff_command


class UnresolvedName(Exception):
    def __init__(self, name: str, file: str, line: int):
        super().__init__(f"{file}:{line}: {name!r} is used by the port but is defined nowhere in the reference code it was built from")
        self.name, self.file, self.line = name, file, line


def undefined_names(code: str) -> list[tuple[str, int]] | None:
    """[(name, line)] in `code`, or None when ruff is not available."""
    ruff = ruff_command()
    if ruff is None:
        return None
    proc = subprocess.run(
        [*ruff, "check", "--isolated", "--no-cache", "--ignore-noqa", "--select", "F821", "--output-format", "json",
         "--stdin-filename", "port.py", "-"],
        input=code, capture_output=True, text=True,
    )
    try:
        findings = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return None
    out = []
    for f in findings:
        message = f.get("message", "")
        if "`" in message:
            out.append((message.split("`")[1], f["location"]["row"]))
    return out


def _uses(source: str, name: str, spans: list[tuple[int, int]]) -> int | None:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and node.id == name and any(a <= node.lineno <= b for a, b in spans):
            return node.lineno
    return None


def check_port_names(code: str, snapshot: Path, spans: dict[str, list[tuple[int, int]]]) -> list[dict] | None:
    """Raise UnresolvedName for a name the port lost; return the names the reference itself
    leaves undefined ({name, file, line}); None when the check could not run."""
    found = undefined_names(code)
    if found is None:
        return None
    left = []
    for name in sorted({n for n, _ in found}):
        where = None
        for rel in sorted(spans):
            line = _uses((snapshot / rel).read_text(), name, spans[rel])
            if line is not None:
                where = (rel, line)
                break
        if where is None:
            line = next(line for n, line in found if n == name)
            raise UnresolvedName(name, "the generated model file", line)
        rel, line = where
        in_reference = undefined_names((snapshot / rel).read_text()) or []
        if name in {n for n, _ in in_reference}:
            left.append({"name": name, "file": rel, "line": line})
        else:
            raise UnresolvedName(name, rel, line)
    return left
