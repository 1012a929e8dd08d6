"""When a session must stop: budgets (turns, tokens, dollars, wall time) and two signs of a
stuck model (consecutive tool errors; the same call with the same result again and again
while the workspace does not change)."""

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

    def record(self, name: str, arguments: Any, result: str, is_error: bool) -> str | None:
        """Feed one tool result; returns why the session must stop, or None."""
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
