"""The file and knowledge tools the refinement LLM may call, confined to the run's workspace.

Each tool has a JSON schema (sent to the model) and a function that returns text. Errors are
returned to the model as `ToolError` messages, never raised into the loop. Every path is
resolved against the workspace; absolute paths, `..` that climbs out and symlinks that point
outside are refused before anything is read or written.

The tools that run code (run_python, run_parity, run_checks) live in agent/llm/env.py, beside
the sandbox and git they need; finish is answered by the loop.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.skills import Skill

MAX_READ_BYTES = 200_000
MAX_LISTED = 500


class ToolError(Exception):
    """A tool call the model got wrong; the message goes back to it as the tool result."""


@dataclass
class Tool:
    name: str
    description: str
    schema: dict[str, Any]
    run: Callable[..., str]

    def spec(self) -> dict[str, Any]:
        """The tool as the Anthropic Messages API expects it."""
        return {"name": self.name, "description": self.description, "input_schema": self.schema}


def object_schema(required: list[str], **props: dict) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


class Workspace:
    """A folder the tools may touch, and nothing outside it."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def resolve(self, path: str) -> Path:
        if not isinstance(path, str) or not path:
            raise ToolError("path must be a non-empty string relative to the workspace")
        if os.path.isabs(path):
            raise ToolError(f"absolute paths are refused: {path} (use a path relative to the workspace)")
        target = (self.root / path).resolve()  # follows symlinks, so a link out of the workspace shows
        if target != self.root and self.root not in target.parents:
            raise ToolError(f"path leaves the workspace: {path}")
        return target

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))


def file_tools(ws: Workspace, skills: dict[str, Skill]) -> dict[str, Tool]:
    def list_files(path: str = ".") -> str:
        base = ws.resolve(path)
        if not base.is_dir():
            raise ToolError(f"not a folder: {path}")
        entries = []
        for p in sorted(base.rglob("*")):
            if ".git" in p.relative_to(ws.root).parts or "__pycache__" in p.parts:
                continue
            if p.is_file():
                entries.append(f"{ws.rel(p)}  ({p.stat().st_size} bytes)")
                if len(entries) >= MAX_LISTED:
                    entries.append(f"(first {MAX_LISTED} files; list a sub-folder for more)")
                    break
        return "\n".join(entries) or "(no files)"

    def read_file(path: str) -> str:
        target = ws.resolve(path)
        if not target.is_file():
            raise ToolError(f"no such file: {path}")
        data = target.read_bytes()[:MAX_READ_BYTES]
        return data.decode("utf-8", errors="replace")

    def write_file(path: str, content: str) -> str:
        target = ws.resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        return f"wrote {ws.rel(target)} ({len(content)} characters)"

    def edit_file(path: str, old: str, new: str) -> str:
        target = ws.resolve(path)
        if not target.is_file():
            raise ToolError(f"no such file: {path}")
        text = target.read_text()
        count = text.count(old) if old else 0
        if count == 0:
            raise ToolError(f"old string not found in {path}; read the file and copy the text exactly")
        if count > 1:
            raise ToolError(f"old string occurs {count} times in {path}; include more context so it is unique")
        target.write_text(text.replace(old, new, 1))
        return f"edited {ws.rel(target)}"

    def search_code(pattern: str, path: str = ".") -> str:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ToolError(f"invalid regular expression: {exc}") from None
        base = ws.resolve(path)
        hits = []
        files = [base] if base.is_file() else sorted(base.rglob("*.py"))
        for f in files:
            if ".git" in f.parts:
                continue
            for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
                if regex.search(line):
                    hits.append(f"{ws.rel(f)}:{n}: {line.strip()}")
                    if len(hits) >= 200:
                        return "\n".join(hits) + "\n(first 200 matches)"
        return "\n".join(hits) or "(no matches)"

    def read_skill(name: str) -> str:
        skill = skills.get(name) or skills.get(f"{name}.md")
        if skill is None:
            raise ToolError(f"no skill {name!r}; available: {', '.join(skills)}")
        return skill.text

    tools = [
        Tool("list_files", "List the files under a folder of the workspace.", object_schema([], path={"type": "string"}), list_files),
        Tool("read_file", "Read a text file of the workspace.", object_schema(["path"], path={"type": "string"}), read_file),
        Tool("write_file", "Create or replace a file of the workspace.", object_schema(["path", "content"], path={"type": "string"}, content={"type": "string"}), write_file),
        Tool(
            "edit_file",
            "Replace one exact occurrence of `old` by `new` in a file; fails if `old` is missing or not unique.",
            object_schema(["path", "old", "new"], path={"type": "string"}, old={"type": "string"}, new={"type": "string"}),
            edit_file,
        ),
        Tool("search_code", "Search Python files of the workspace with a regular expression.", object_schema(["pattern"], pattern={"type": "string"}, path={"type": "string"}), search_code),
        Tool("read_skill", "Read one of the convention documents (skills) in full.", object_schema(["name"], name={"type": "string"}), read_skill),
    ]
    return {t.name: t for t in tools}


def call_tool(tools: dict[str, Tool], name: str, arguments: Any) -> tuple[str, bool]:
    """(result text, is_error): unknown tools and bad arguments are answered, not raised."""
    tool = tools.get(name)
    if tool is None:
        return f"unknown tool {name!r}; available: {', '.join(tools)}", True
    if not isinstance(arguments, dict):
        return f"arguments for {name} must be a JSON object", True
    allowed = set(tool.schema["properties"])
    missing = [k for k in tool.schema["required"] if k not in arguments]
    extra = [k for k in arguments if k not in allowed]
    if missing or extra:
        return f"{name}: " + "; ".join(filter(None, [missing and f"missing {', '.join(missing)}", extra and f"unknown {', '.join(extra)}"])), True
    try:
        return tool.run(**arguments), False
    except ToolError as exc:
        return str(exc), True
    except OSError as exc:
        return f"{name} failed: {exc.strerror or exc}", True
