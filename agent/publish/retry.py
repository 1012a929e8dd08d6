"""One retry policy for every service we talk to: how often, and how long to wait.

GitHub and the Hub both say when to come back (Retry-After, or a rate-limit reset time); when
they do not, waits double from `backoff_s`. A wait longer than `max_wait_s` is not slept: the
call gives up at once with a line that says when to try again, rather than hang a run (or a
bot worker) for an hour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 5  # tries after the first
    backoff_s: float = 1.0  # first wait when the service names none; doubled each time
    max_wait_s: float = 300.0  # the longest single wait we accept
    secondary_wait_s: float = 60.0  # GitHub: after a secondary limit that names no wait, wait a minute

    def wait(self, attempt: int, told: float | None) -> float:
        """Seconds to wait before try `attempt + 1` (attempt counts from 0)."""
        if told is not None:
            return max(0.0, told)
        return self.backoff_s * (2**attempt)


class GaveUp(Exception):
    """Retries are spent, or the service asked for a longer wait than the policy allows."""


def retry_after_seconds(headers: dict[str, str] | None, now: float | None = None) -> float | None:
    """The wait a response asks for: Retry-After (seconds or an HTTP date is not used by GitHub
    or the Hub, so seconds only), else GitHub's x-ratelimit-reset when nothing is left."""
    if not headers:
        return None
    low = {k.lower(): v for k, v in headers.items()}
    value = low.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    if low.get("x-ratelimit-remaining") == "0" and low.get("x-ratelimit-reset", "").isdigit():
        return max(0.0, float(low["x-ratelimit-reset"]) - (now if now is not None else time.time()) + 1)
    return None


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    retryable: Callable[[Exception], float | None | bool],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call fn; when it raises and `retryable(exc)` is not False, wait and try again.

    `retryable` returns False (not retryable), True (retry on our own backoff) or the number of
    seconds the service asked for."""
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - the predicate decides; everything else re-raises
            verdict = retryable(exc)
            if verdict is False:
                raise
            if attempt >= policy.retries:
                raise GaveUp(f"still refused after {policy.retries} retries") from exc
            wait = policy.wait(attempt, None if verdict is True else float(verdict))
            if wait > policy.max_wait_s:
                raise GaveUp(f"asked to wait {wait:.0f} s, longer than the {policy.max_wait_s:.0f} s allowed") from exc
            sleep(wait)
            attempt += 1
