"""What a convention codemod did: the changes it made and what it left, each with its reason."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class GroupReport:
    """One convention group's account. `changes` and `skipped` are short human sentences;
    `data` carries what later steps need (renames, flags), JSON-serialisable."""

    group: str
    changes: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def changed(self, what: str) -> None:
        self.changes.append(what)

    def skip(self, what: str, reason: str) -> None:
        self.skipped.append({"what": what, "reason": reason})

    def merge(self, other: GroupReport) -> None:
        self.changes += other.changes
        self.skipped += other.skipped
        self.data.update(other.data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
