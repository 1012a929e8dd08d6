"""Keep secrets out of what we write: trajectories, logs and PR bodies.

Two nets: the values of environment variables whose names say they hold a secret (keys, tokens,
passwords; narrower than the sandbox's rule, which also drops whole families such as ANTHROPIC_*,
whose URLs and paths are not secret), and the shapes of well-known tokens, for secrets that arrive some
other way (pasted into a file the model reads, echoed by a tool).
"""

from __future__ import annotations

import os
import re
from typing import Any

SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|_KEY$|^KEY$", re.IGNORECASE)
TOKEN_SHAPES = re.compile(
    r"sk-ant-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|AKIA[0-9A-Z]{16}"
)
MIN_SECRET_LENGTH = 6  # shorter values would blank out ordinary words


def secret_values() -> list[str]:
    values = {v for k, v in os.environ.items() if SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact_text(text: str, values: list[str] | None = None) -> str:
    for v in secret_values() if values is None else values:
        text = text.replace(v, "[redacted]")
    return TOKEN_SHAPES.sub("[redacted]", text)


def redact(obj: Any, values: list[str] | None = None) -> Any:
    """A copy of a JSON-like value with every string redacted."""
    values = secret_values() if values is None else values
    if isinstance(obj, str):
        return redact_text(obj, values)
    if isinstance(obj, dict):
        return {k: redact(v, values) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v, values) for v in obj]
    return obj
