"""What a session costs: usage totals, cache hit ratio and dollars from a price table.

Prices are dollars per million tokens, per model, with cache writes and cache reads priced
apart from plain input (Anthropic bills them differently). The table is configurable with a
JSON file of the same shape; a model the table lacks is an error, not a guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from agent.errors import IntegrateError

# $ per million tokens. cache_write is the 5-minute ephemeral cache (1.25x input), cache_read 0.1x.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "claude-sonnet-4-5": {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.30},
    "claude-sonnet-4": {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.30},
    "claude-opus-4-1": {"input": 15.0, "output": 75.0, "cache_write": 18.75, "cache_read": 1.50},
    "claude-haiku-4-5": {"input": 1.0, "output": 5.0, "cache_write": 1.25, "cache_read": 0.10},
}
PRICE_FIELDS = ("input", "output", "cache_write", "cache_read")
USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def load_prices(path: str | Path | None) -> dict[str, dict[str, float]]:
    """The default table, with entries from a JSON file (same shape) added or replaced."""
    table = {k: dict(v) for k, v in DEFAULT_PRICES.items()}
    if path is None:
        return table
    try:
        extra = json.loads(Path(path).read_text())
    except OSError as exc:
        raise IntegrateError(f"cannot read the price table {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise IntegrateError(f"price table {path} is not JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(extra, dict):
        raise IntegrateError(f"price table {path}: expected an object of model -> prices")
    for model, prices in extra.items():
        if not isinstance(prices, dict) or any(not isinstance(prices.get(f), (int, float)) for f in PRICE_FIELDS):
            raise IntegrateError(f"price table {path}: {model} needs numbers for {', '.join(PRICE_FIELDS)} ($ per million tokens)")
        table[model] = {f: float(prices[f]) for f in PRICE_FIELDS}
    return table


def prices_for(table: dict[str, dict[str, float]], model: str) -> dict[str, float]:
    if model in table:
        return table[model]
    raise IntegrateError(f"no prices for model {model!r}; add it with --prices FILE (JSON: {{\"{model}\": {{\"input\": ..., \"output\": ..., \"cache_write\": ..., \"cache_read\": ...}}}})")


def turn_cost(usage: dict[str, int], prices: dict[str, float]) -> float:
    return (
        usage.get("input_tokens", 0) * prices["input"]
        + usage.get("output_tokens", 0) * prices["output"]
        + usage.get("cache_creation_input_tokens", 0) * prices["cache_write"]
        + usage.get("cache_read_input_tokens", 0) * prices["cache_read"]
    ) / 1_000_000


@dataclass
class Usage:
    """Running totals over the turns of a session."""

    prices: dict[str, float]
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(USAGE_FIELDS, 0))
    dollars: float = 0.0
    turns: int = 0

    def add(self, usage: dict[str, int]) -> float:
        cost = turn_cost(usage, self.prices)
        for f in USAGE_FIELDS:
            self.tokens[f] += int(usage.get(f) or 0)
        self.dollars += cost
        self.turns += 1
        return cost

    @property
    def total_tokens(self) -> int:
        """Input (plain, cache written, cache read) plus output: what the token limit counts."""
        return sum(self.tokens.values())

    @property
    def cache_hit_ratio(self) -> float:
        """Share of prompt tokens served from the cache."""
        prompt = self.tokens["input_tokens"] + self.tokens["cache_creation_input_tokens"] + self.tokens["cache_read_input_tokens"]
        return self.tokens["cache_read_input_tokens"] / prompt if prompt else 0.0

    def summary(self) -> dict:
        return {"turns": self.turns, "tokens": dict(self.tokens), "total_tokens": self.total_tokens,
                "cache_hit_ratio": round(self.cache_hit_ratio, 4), "dollars": round(self.dollars, 6)}
