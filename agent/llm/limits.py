"""When a session must stop: budgets (turns, tokens, dollars, wall time) and two signs of a
stuck model (consecutive tool errors; the same call with the same result again and again
while the workspace does not change). Also what one turn may ask for: at most
`max_calls_per_turn` tool calls and `max_turn_input_bytes` of tool input; what is over is
answered "not run", and an oversized input is kept out of the conversation."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.llm.cost import Usage

WRITING_TOOLS = {"write_file", "edit_file"}
VERDICT_TOOLS = {"finish"}  # a refused finish is parity's verdict, not a misused tool


@dataclass
class LoopLimits:
    max_turns: int = 40
    max_tokens: int = 3_000_000  # input (plain + cache written + cache read) plus output, summed over turns
    max_dollars: float = 5.0
    max_wall_s: float = 3600.0
    max_tool_errors: int = 5  # in a row
    max_repeats: int = 3  # the same call with the same result, with no workspace change between
    result_chars: int = 12_000  # tool results longer than this are cut in the middle
    max_calls_per_turn: int = 20
    max_turn_input_bytes: int = 1 << 20  # JSON of the turn's tool inputs, summed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def budget_exceeded(limits: LoopLimits, usage: Usage, wall_s: float) -> str | None:
    """The budget that is spent, checked before each model call."""
    if usage.turns >= limits.max_turns:
        return f"turn limit ({limits.max_turns} turns)"
    if usage.total_tokens >= limits.max_tokens:
        return f"token limit ({usage.total_tokens:,} of {limits.max_tokens:,} tokens)"
    if usage.dollars >= limits.max_dollars:
        return f"cost limit (${usage.dollars:.4f} of ${limits.max_dollars:.2f})"
    if wall_s >= limits.max_wall_s:
        return f"wall-time limit ({wall_s:.0f} s of {limits.max_wall_s:.0f} s)"
    return None


@dataclass
class StuckDetector:
    limits: LoopLimits
    errors_in_a_row: int = 0
    seen: Counter = field(default_factory=Counter)

    def record(self, name: str, arguments: Any, result: str, is_error: bool, not_run: bool = False) -> str | None:
        """Feed one tool result; returns why the session must stop, or None. A call the loop
        declined to run (over a per-turn cap, out of time, after finish) is not the model's error."""
        if not_run:
            return None
        self.errors_in_a_row = self.errors_in_a_row + 1 if (is_error and name not in VERDICT_TOOLS) else 0
        if name in WRITING_TOOLS and not is_error:
            self.seen.clear()  # the workspace changed: an earlier result may legitimately come back
        key = (name, json.dumps(arguments, sort_keys=True, default=str), result)
        self.seen[key] += 1
        if self.errors_in_a_row >= self.limits.max_tool_errors:
            return f"{self.errors_in_a_row} tool errors in a row"
        if self.seen[key] >= self.limits.max_repeats:
            return f"repeated call: {name} with the same input returned the same result {self.seen[key]} times"
        return None


def truncate_middle(text: str, limit: int) -> str:
    """Head and tail of a long tool result, so both the start and the final error survive."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    return f"{text[:head]}\n[... {len(text) - limit} characters cut ...]\n{text[-tail:]}"


OMITTED = "[{n:,} characters omitted: the turn's tool input was over the {cap:,}-byte cap]"


def _input_bytes(value: Any) -> int:
    return len(json.dumps(value, default=str).encode("utf-8", "replace"))


def cap_turn(content: list[dict[str, Any]], limits: LoopLimits) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(content to keep in the conversation, tool_use id -> why it is not run) for one answer.

    Calls past the count cap are not run. Once the inputs add up past the byte cap, that call
    and the later ones are not run either, and their long strings are replaced by a note, so an
    oversized input is neither executed nor sent back to the API on every later turn."""
    kept, refused, total, calls = [], {}, 0, 0
    for block in content:
        if block.get("type") != "tool_use":
            kept.append(block)
            continue
        calls += 1
        total += _input_bytes(block.get("input"))
        if total > limits.max_turn_input_bytes:
            refused[block["id"]] = f"not run: this turn's tool inputs add up to more than {limits.max_turn_input_bytes:,} bytes; send smaller edits"
            block = {**block, "input": _shrunk(block.get("input"), limits.max_turn_input_bytes)}
        elif calls > limits.max_calls_per_turn:
            refused[block["id"]] = f"not run: at most {limits.max_calls_per_turn} tool calls are run per turn"
        kept.append(block)
    return kept, refused


def _shrunk(value: Any, cap: int) -> Any:
    if isinstance(value, dict):
        return {k: _shrunk(v, cap) for k, v in value.items()}
    if isinstance(value, str) and len(value) > 200:
        return OMITTED.format(n=len(value), cap=cap)
    if isinstance(value, (list, dict)) or _input_bytes(value) > 200:
        return OMITTED.format(n=_input_bytes(value), cap=cap)
    return value
