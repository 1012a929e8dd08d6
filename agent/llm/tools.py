"""The file and knowledge tools the refinement LLM may call, confined to the run's workspace.

Each tool has a JSON schema (sent to the model) and a function that returns text. Errors are
returned to the model as `ToolError` messages, never raised into the loop. Which paths the model
may name is agent/llm/paths.py's job; sizes are capped here (MAX_* below, documented in
docs/refinement.md) so no call can fill the disk, the memory or the conversation.

search_code runs the model's regular expression with RE2 (google-re2), whose matching time is
linear in the text: no pattern can backtrack for minutes inside the tool's own process.
Backreferences and lookarounds, which need backtracking, are refused with RE2's reason.

The tools that run code (run_python, run_parity, run_checks) live in agent/llm/env.py, beside
the sandbox and git they need; finish is answered by the loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import re2

from agent.llm.paths import PathRefused, Workspace, read_capped, write_text
from agent.skills import Skill

MAX_READ_BYTES = 200_000  # read_file returns at most this much of a file
MAX_FILE_BYTES = 1 << 20  # write_file content, and a file after edit_file, in UTF-8
MAX_LISTED = 500
MAX_WALKED = 20_000  # entries list_files and search_code look at before giving up
MAX_PATTERN_CHARS = 1_000
MAX_SEARCH_BYTES = 64 << 20  # text search_code reads in one call
MAX_HITS = 200
MAX_HIT_CHARS = 300
RE2_MAX_MEM = 64 << 20


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


def _encoded(text: str, what: str) -> bytes:
    """UTF-8 for a file's content: no lone surrogate, no NUL (source files never hold one), capped."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolError(f"{what} is not valid UTF-8 (a lone surrogate)") from None
    if b"\0" in data:
        raise ToolError(f"{what} contains a NUL byte; only text files are written")
    if len(data) > MAX_FILE_BYTES:
        raise ToolError(f"{what} is {len(data):,} bytes; files are capped at {MAX_FILE_BYTES:,} bytes")
    return data


def _existing_file(target: Path, path: str) -> Path:
    if target.is_dir():
        raise ToolError(f"{path} is a folder (list_files lists it)")
    if not os.path.lexists(target):
        raise ToolError(f"no such file: {path}")
    return target  # opened as a regular file only, by paths.read_capped


def _walk(ws: Workspace, base: Path, suffix: str = ""):
    """Regular files under `base` (links are not followed), sorted, metadata and caches left out."""
    seen = 0
    for dirpath, dirnames, filenames in os.walk(base):
        rel = Path(dirpath).relative_to(ws.root).parts
        dirnames[:] = sorted(d for d in dirnames if not ws.hidden((*rel, d)))
        for name in sorted(filenames):
            seen += 1
            if seen > MAX_WALKED:
                raise ToolError(f"more than {MAX_WALKED:,} files under {ws.rel(base) or '.'}; name a sub-folder")
            p = Path(dirpath) / name
            if name.endswith(suffix) and not ws.hidden((*rel, name)) and not p.is_symlink() and p.is_file():
                yield p


def file_tools(ws: Workspace, skills: dict[str, Skill]) -> dict[str, Tool]:
    def list_files(path: str = ".") -> str:
        base = ws.resolve(path)
        if not base.is_dir():
            raise ToolError(f"not a folder: {path}")
        entries = []
        for p in _walk(ws, base):
            entries.append(f"{ws.rel(p)}  ({p.stat().st_size} bytes)")
            if len(entries) >= MAX_LISTED:
                entries.append(f"(first {MAX_LISTED} files; list a sub-folder for more)")
                break
        return "\n".join(entries) or "(no files)"

    def read_file(path: str) -> str:
        target = _existing_file(ws.resolve(path), path)
        data, size = read_capped(target, MAX_READ_BYTES)
        more = f"\n[... the file has {size:,} bytes; only the first {MAX_READ_BYTES:,} are shown]" if size > MAX_READ_BYTES else ""
        return data.decode("utf-8", errors="replace") + more

    def write_file(path: str, content: str) -> str:
        data = _encoded(content, "content")
        target = ws.resolve(path, write=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text(target, data)
        return f"wrote {ws.rel(target)} ({len(content)} characters)"

    def edit_file(path: str, old: str, new: str) -> str:
        target = _existing_file(ws.resolve(path, write=True), path)
        data, size = read_capped(target, MAX_FILE_BYTES + 1)
        if size > MAX_FILE_BYTES:
            raise ToolError(f"{path} is over {MAX_FILE_BYTES:,} bytes; it is not edited")
        text = data.decode("utf-8", errors="replace")
        count = text.count(old) if old else 0
        if count == 0:
            raise ToolError(f"old string not found in {path}; read the file and copy the text exactly")
        if count > 1:
            raise ToolError(f"old string occurs {count} times in {path}; include more context so it is unique")
        write_text(target, _encoded(text.replace(old, new, 1), f"{path} after the edit"))
        return f"edited {ws.rel(target)}"

    def search_code(pattern: str, path: str = ".") -> str:
        if len(pattern) > MAX_PATTERN_CHARS:
            raise ToolError(f"pattern longer than {MAX_PATTERN_CHARS} characters")
        options = re2.Options()
        options.log_errors = False
        options.max_mem = RE2_MAX_MEM
        try:
            regex = re2.compile(pattern, options)
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise ToolError(f"invalid regular expression (RE2 syntax: no backreferences or lookarounds): {reason}") from None
        except UnicodeError:
            raise ToolError("pattern is not valid UTF-8 (a lone surrogate)") from None
        base = ws.resolve(path)
        hits, budget = [], MAX_SEARCH_BYTES
        for f in [base] if base.is_file() else _walk(ws, base, ".py"):
            data, size = read_capped(f, min(budget, MAX_FILE_BYTES * 4))
            budget -= len(data)
            for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
                if regex.search(line):
                    hits.append(f"{ws.rel(f)}:{n}: {line.strip()[:MAX_HIT_CHARS]}")
                    if len(hits) >= MAX_HITS:
                        return "\n".join(hits) + f"\n(first {MAX_HITS} matches)"
            if budget <= 0:
                hits.append(f"(stopped after reading {MAX_SEARCH_BYTES:,} bytes; search a sub-folder)")
                break
        return "\n".join(hits) or "(no matches)"

    def read_skill(name: str) -> str:
        skill = skills.get(name) or skills.get(f"{name}.md")
        if skill is None:
            raise ToolError(f"no skill {name!r}; available: {', '.join(skills)}")
        return skill.text

    tools = [
        Tool("list_files", "List the files under a folder of the workspace.", object_schema([], path={"type": "string"}), list_files),
        Tool("read_file", f"Read a text file of the workspace (the first {MAX_READ_BYTES:,} bytes).", object_schema(["path"], path={"type": "string"}), read_file),
        Tool("write_file", f"Create or replace a text file of the workspace (at most {MAX_FILE_BYTES:,} bytes).",
             object_schema(["path", "content"], path={"type": "string"}, content={"type": "string"}), write_file),
        Tool(
            "edit_file",
            "Replace one exact occurrence of `old` by `new` in a file; fails if `old` is missing or not unique.",
            object_schema(["path", "old", "new"], path={"type": "string"}, old={"type": "string"}, new={"type": "string"}),
            edit_file,
        ),
        Tool("search_code", "Search Python files of the workspace with a regular expression (RE2 syntax: no backreferences or lookarounds).",
             object_schema(["pattern"], pattern={"type": "string"}, path={"type": "string"}), search_code),
        Tool("read_skill", "Read one of the convention documents (skills) in full.", object_schema(["name"], name={"type": "string"}), read_skill),
    ]
    return {t.name: t for t in tools}


JSON_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "number": (int, float), "integer": (int,), "boolean": (bool,), "object": (dict,), "array": (list,)}


def _type_problems(schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    problems = []
    for key, value in arguments.items():
        expected = schema["properties"].get(key, {}).get("type")
        ok = JSON_TYPES.get(expected)
        if ok and (not isinstance(value, ok) or (isinstance(value, bool) and expected != "boolean")):
            problems.append(f"{key} must be a {expected}")
    return problems


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
    wrong = _type_problems(tool.schema, arguments)
    if wrong:
        return f"{name}: " + "; ".join(wrong), True
    try:
        return tool.run(**arguments), False
    except (ToolError, PathRefused) as exc:
        return str(exc), True
    except OSError as exc:
        return f"{name} failed: {exc.strerror or exc}", True
    except (ValueError, UnicodeError, RecursionError, MemoryError) as exc:  # input no check foresaw: answered, never a crash
        return f"{name} failed: {type(exc).__name__}: {exc}"[:500], True
