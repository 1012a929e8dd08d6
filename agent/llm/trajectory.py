"""The session's trajectory: one JSONL event per step, written (and fsynced) as it happens.

It is the record a reviewer reads and the state a resumed run rebuilds its conversation from,
so it holds messages, usage, costs, timings and tool results, with secrets redacted before
anything touches the disk. Event types: start, user, assistant, tool_results, checkpoint,
resume, paused, end.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.redact import redact


class Trajectory:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, event: dict[str, Any]) -> None:
        line = json.dumps(redact({"time": round(time.time(), 3), **event}), default=str)
        with open(self.path, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def events(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by a kill; everything before it is intact
        return out


@dataclass
class Restored:
    """What a trajectory says about a session so far."""

    start: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    assistant_turns: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)  # every tool result, in order
    last_green: str | None = None
    checkpoints: list[str] = field(default_factory=list)  # green commits, in order
    seconds: float = 0.0
    pending: list[dict[str, Any]] = field(default_factory=list)  # tool_use blocks never answered
    end: dict[str, Any] | None = None


def tool_result_message(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": r["tool_use_id"], "content": r["content"], "is_error": r["is_error"]} for r in results
    ]}


def restore(events: list[dict[str, Any]]) -> Restored:
    state = Restored()
    for e in events:
        kind = e["type"]
        state.seconds += e.get("seconds", 0.0)
        if kind == "start":
            state.start = e
            state.last_green = state.last_green or e.get("base_commit")
        elif kind == "user":
            state.messages.append({"role": "user", "content": e["content"]})
        elif kind == "assistant":
            state.assistant_turns.append(e)
            if e["content"]:
                state.messages.append({"role": "assistant", "content": e["content"]})
        elif kind == "tool_results":
            state.results += e["results"]
            state.messages.append(tool_result_message(e["results"]))
        elif kind == "checkpoint":
            state.last_green = e["commit"]
            state.checkpoints.append(e["commit"])
        elif kind == "end":
            state.end = e
    last = state.messages[-1] if state.messages else None
    if last and last["role"] == "assistant":
        state.pending = [b for b in last["content"] if b.get("type") == "tool_use"]
    return state
