"""The rule registry: every rule's documentation and its check, in one place.

Each rule lives in its own module under `agent/checks/rules/` and registers one `Rule`. The
docs (what, why, a bad/good example, the skills anchor) feed `--explain`, docs/rules.md, the
SARIF rule metadata and the skills the LLM reads, so a rule is stated once.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path


@dataclass(frozen=True)
class Finding:
    rule: str
    path: str
    line: int
    col: int
    message: str

    def to_dict(self) -> dict:
        return {"rule": self.rule, "path": self.path, "line": self.line, "col": self.col, "message": self.message}


@dataclass
class FileContext:
    path: Path
    source: str
    tree: ast.Module | None  # None for text rules
    lines: list[str] = field(default_factory=list)
    line_offset: int = 0  # for call rules: where the parsed slice starts in the file
    col_offset: int = 0
    class_name: str = ""  # for call rules: the class that owns __call__, and its bases
    class_bases: tuple[str, ...] = ()

    @classmethod
    def parse(cls, path: Path, source: str) -> FileContext:
        return cls(path=path, source=source, tree=ast.parse(source, filename=str(path)), lines=source.splitlines())

    @cached_property
    def nodes(self) -> list[ast.AST]:
        """Every node once: rules filter this instead of walking the tree again."""
        return list(ast.walk(self.tree))

    def of_type(self, *types: type) -> list:
        return [n for n in self.nodes if isinstance(n, types)]

    def line_at(self, offset: int) -> int:
        """1-based line of a character offset in the source (for text rules' regex matches)."""
        return self.source.count("\n", 0, offset) + 1


# A check yields (node or line number, message).
Check = Callable[[FileContext], Iterable[tuple[ast.AST | int, str]]]


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    scope: str  # models | pipelines | repository
    summary: str
    what: str
    why: str
    bad: str
    good: str
    anchor: str  # skills file and heading anchor, e.g. "models.md#attention-dispatch"
    check: Check
    fixable: bool = False
    # Text that must occur in a file for the rule to possibly fire: files where no rule's
    # trigger occurs are not parsed at all (parsing is most of the cost on large trees).
    triggers: tuple[str, ...] = ()
    # "ast": the whole file's tree; "text": source and lines only; "call": each `def __call__`
    # method parsed on its own (ctx.tree holds it), which is far cheaper than the whole file.
    kind: str = "ast"
    # Or a cheap text test of its own, for rules whose trigger words are everywhere.
    prefilter: Callable[[str], bool] | None = None

    def applies(self, source: str) -> bool:
        if self.prefilter is not None:
            return self.prefilter(source)
        return not self.triggers or any(t in source for t in self.triggers)

    def run(self, ctx: FileContext) -> list[Finding]:
        out = []
        for where, message in self.check(ctx):
            line = where if isinstance(where, int) else getattr(where, "lineno", 1) + ctx.line_offset
            col = 0 if isinstance(where, int) else getattr(where, "col_offset", 0) + ctx.col_offset
            out.append(Finding(self.id, str(ctx.path), line, col + 1, message))
        return out


RULES: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    if rule.id in RULES:
        raise ValueError(f"duplicate rule id {rule.id}")
    RULES[rule.id] = rule
    return rule


def resolve_ids(names: Iterable[str]) -> set[str]:
    """Accept ids ("M002") or names ("attention-dispatch"), case-insensitive; prefixes select groups."""
    from agent.checks import rules as _  # noqa: F401  (registers every rule)

    wanted = set()
    for raw in names:
        key = raw.strip()
        if not key:
            continue
        hits = {r.id for r in RULES.values() if r.id.lower() == key.lower() or r.name == key.lower() or r.id.lower().startswith(key.lower())}
        if not hits:
            raise KeyError(key)
        wanted |= hits
    return wanted
