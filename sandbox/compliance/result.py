"""What one compliance check concluded, and the evidence for it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class CheckResult:
    status: str  # passed | failed | skipped
    summary: str  # one line: what was found, or why the check did not run
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "summary": self.summary, "evidence": jsonable(self.evidence)}


def passed(summary: str, **evidence: Any) -> CheckResult:
    return CheckResult(PASSED, summary, evidence)


def failed(summary: str, **evidence: Any) -> CheckResult:
    return CheckResult(FAILED, summary, evidence)


def skipped(summary: str, **evidence: Any) -> CheckResult:
    return CheckResult(SKIPPED, summary, evidence)


def jsonable(value: Any) -> Any:
    """Evidence as strict JSON: non-finite floats become strings, tuples lists, the rest str()."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


def error_line(exc: BaseException, limit: int = 300) -> str:
    """`Class: first line of the message`, capped: how an error is quoted as evidence."""
    lines = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {lines[0] if lines else ''}"[:limit]
