"""LLM backends behind one small interface: the real Anthropic SDK, and scripted turns.

`complete(system, messages, tools) -> Turn`. The anthropic backend honours ANTHROPIC_API_KEY and
ANTHROPIC_BASE_URL (through the SDK), marks the system prompt and the tool list as a cached
prefix (`cache_control`), adds a moving breakpoint on the newest message, and leaves transient
failures (429 with retry-after, 529 overloaded, 5xx, timeouts) to the SDK's retries; what still fails becomes one BackendError. The scripted
backend replays a JSONL file of assistant turns, for tests and demos.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

DEFAULT_MODEL = "claude-sonnet-4-5"
DEFAULT_TIMEOUT_S = 600.0  # per request, before the SDK retries


class BackendError(Exception):
    """The model could not be reached or answered unusably; the message says why in one line."""


@dataclass
class Turn:
    content: list[dict[str, Any]]  # text and tool_use blocks, as the Messages API returns them
    stop_reason: str | None
    usage: dict[str, int] = field(default_factory=dict)


class Backend(Protocol):
    def complete(self, system: list[dict], messages: list[dict], tools: list[dict]) -> Turn: ...


def _cached(blocks: list[dict]) -> list[dict]:
    """Mark the last block as the end of the cached prefix."""
    if not blocks:
        return blocks
    return [*blocks[:-1], {**blocks[-1], "cache_control": {"type": "ephemeral"}}]


def _cached_conversation(messages: list[dict]) -> list[dict]:
    """A breakpoint on the newest message too, so each turn reads the previous turns from the
    cache instead of paying for them again (the caller's list is not changed)."""
    if not messages:
        return messages
    last = messages[-1]
    content = last["content"] if isinstance(last["content"], list) else [{"type": "text", "text": last["content"]}]
    return [*messages[:-1], {**last, "content": _cached(content)}]


class AnthropicBackend:
    def __init__(self, model: str, max_tokens: int = 8192, timeout: float = DEFAULT_TIMEOUT_S, max_retries: int = 4):
        import anthropic

        if not os.environ.get("ANTHROPIC_API_KEY"):
            raise BackendError("ANTHROPIC_API_KEY is not set")
        self._anthropic = anthropic
        self.model, self.max_tokens = model, max_tokens
        self.client = anthropic.Anthropic(timeout=timeout, max_retries=max_retries)  # key and base URL from the environment

    def complete(self, system: list[dict], messages: list[dict], tools: list[dict]) -> Turn:
        a = self._anthropic
        try:
            response = self.client.messages.create(
                model=self.model, max_tokens=self.max_tokens, system=_cached(system), tools=_cached(tools), messages=_cached_conversation(messages)
            )
        except a.APIStatusError as exc:
            raise BackendError(f"Anthropic API error {exc.status_code}: {exc.message}") from None
        except a.APITimeoutError:
            raise BackendError("Anthropic API timed out (after retries)") from None
        except a.APIConnectionError:
            raise BackendError("cannot reach the Anthropic API (after retries)") from None
        data = response.model_dump()
        return Turn(content=data["content"], stop_reason=data.get("stop_reason"), usage={k: v for k, v in (data.get("usage") or {}).items() if isinstance(v, int)})


class ScriptedBackend:
    """Turns from a JSONL file: one {"content": [...], "stop_reason": ..., "usage": {...}} per line."""

    def __init__(self, path: str | Path):
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            raise BackendError(f"cannot read the script {path}: {exc.strerror}") from None
        self.turns = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                turn = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BackendError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(turn.get("content"), list):
                raise BackendError(f"{path}:{n}: a turn needs a content list")
            self.turns.append(turn)
        self.position = 0

    def resume_at(self, turns: int) -> None:
        """Continue a resumed session with the turn after those already played."""
        self.position = turns

    def complete(self, system: list[dict], messages: list[dict], tools: list[dict]) -> Turn:
        if self.position >= len(self.turns):
            raise BackendError(f"the script has no turn {self.position + 1} (it has {len(self.turns)})")
        turn = self.turns[self.position]
        self.position += 1
        return Turn(content=turn["content"], stop_reason=turn.get("stop_reason", "end_turn"), usage=turn.get("usage", {}))
