"""LLM backends behind one small interface: the real Anthropic SDK, and scripted turns.

`complete(system, messages, tools) -> Turn`. The anthropic backend honours ANTHROPIC_API_KEY and
ANTHROPIC_BASE_URL (through the SDK), marks the system prompt and the tool list as a cached
prefix (`cache_control`), adds a moving breakpoint on the newest message, and leaves transient
failures (429 with retry-after, 529 overloaded, 5xx, timeouts) to the SDK's retries; what
still fails becomes one BackendError. The answer's raw JSON is checked by agent/llm/answer.py
(a malformed one is a BackendError too, so the loop pauses instead of crashing). The scripted
backend replays a JSONL file of assistant turns, for tests and demos; its turns are checked the
same way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.llm.answer import MalformedAnswer, parse_answer, parse_json

DEFAULT_MODEL = "claude-sonnet-4-5"
DEFAULT_TIMEOUT_S = 600.0  # per request, before the SDK retries
MIN_REQUEST_TIMEOUT_S = 5.0
MAX_ANSWER_BYTES = 32 << 20


class BackendError(Exception):
    """The model could not be reached or answered unusably; the message says why in one line."""


@dataclass
class Turn:
    content: list[dict[str, Any]]  # text and tool_use blocks, as the Messages API returns them
    stop_reason: str | None
    usage: dict[str, int] = field(default_factory=dict)


class Backend(Protocol):
    def complete(self, system: list[dict], messages: list[dict], tools: list[dict], time_left: float | None = None) -> Turn:
        """One answer; `time_left` (seconds of the session's wall time) bounds the wait when given."""
        ...


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
        self.timeout, self.max_retries = timeout, max_retries
        self.client = anthropic.Anthropic(timeout=timeout, max_retries=max_retries)  # key and base URL from the environment

    def _client(self, time_left: float | None):
        """The client, with each attempt's timeout cut so that all attempts fit in `time_left`."""
        if time_left is None:
            return self.client
        per_attempt = max(MIN_REQUEST_TIMEOUT_S, min(self.timeout, time_left / (self.max_retries + 1)))
        return self.client.with_options(timeout=per_attempt)

    def complete(self, system: list[dict], messages: list[dict], tools: list[dict], time_left: float | None = None) -> Turn:
        a = self._anthropic
        try:
            raw = self._client(time_left).messages.with_raw_response.create(
                model=self.model, max_tokens=self.max_tokens, system=_cached(system), tools=_cached(tools), messages=_cached_conversation(messages)
            )
            body = raw.http_response.content
        except a.APIStatusError as exc:
            raise BackendError(f"Anthropic API error {exc.status_code}: {str(exc.message)[:300]}") from None
        except a.APITimeoutError:
            raise BackendError("Anthropic API timed out (after retries)") from None
        except a.APIConnectionError:
            raise BackendError("cannot reach the Anthropic API (after retries)") from None
        except a.AnthropicError as exc:  # anything else the SDK could not make sense of
            raise BackendError(f"Anthropic API answer unusable: {type(exc).__name__}: {str(exc)[:200]}") from None
        try:
            if len(body) > MAX_ANSWER_BYTES:
                raise MalformedAnswer(f"the answer is {len(body):,} bytes (more than {MAX_ANSWER_BYTES:,})")
            content, stop, usage = parse_answer(parse_json(body))
        except MalformedAnswer as exc:
            raise BackendError(f"malformed answer from the Anthropic API: {exc}") from None
        return Turn(content=content, stop_reason=stop, usage=usage)


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
            if not isinstance(turn, dict) or not isinstance(turn.get("content"), list):
                raise BackendError(f"{path}:{n}: a turn needs a content list")
            self.turns.append(turn)
        self.position = 0

    def resume_at(self, turns: int) -> None:
        """Continue a resumed session with the turn after those already played."""
        self.position = turns

    def complete(self, system: list[dict], messages: list[dict], tools: list[dict], time_left: float | None = None) -> Turn:
        if self.position >= len(self.turns):
            raise BackendError(f"the script has no turn {self.position + 1} (it has {len(self.turns)})")
        turn = self.turns[self.position]
        try:
            content, stop, usage = parse_answer({"stop_reason": "end_turn", **turn}, envelope=False)
        except MalformedAnswer as exc:
            raise BackendError(f"malformed turn {self.position + 1} of the script: {exc}") from None
        self.position += 1
        return Turn(content=content, stop_reason=stop, usage=usage)
