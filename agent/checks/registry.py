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

SYNTAX_ERROR = "E999"


@dataclass(frozen=True)
class Finding:
    rule: str
    path: str
    line: int
    col: int
    message: str

    def to_dict(self) -> dict:
        return {"rule": self.rule, "path": self.path, "line": self.line, "col": self.col, "message": self.message}


# Fields that never hold a node (names, numbers, flags, a constant's value), and `ctx`, whose
# Load/Store/Del nodes are shared singletons no rule looks at: skipping them is most of the saving.
_LEAF_FIELDS = frozenset({
    "ctx", "id", "attr", "arg", "name", "module", "level", "kind", "conversion", "is_async", "simple",
    "type_comment", "tag",
})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(cls: type) -> tuple[str, ...]:
    fields = tuple(
        f for f in cls._fields if f not in _LEAF_FIELDS and not (cls is ast.Constant and f == "value")
    )
    _CHILD_FIELDS[cls] = fields
    return fields


def child_nodes(node: ast.AST) -> list[ast.AST]:
    """The node's direct children in field order, as `ast.iter_child_nodes` gives them but
    without the Load/Store/Del context nodes (a list, built without a generator)."""
    out: list[ast.AST] = []
    node_type = ast.AST
    fields = _CHILD_FIELDS.get(node.__class__)
    for name in fields if fields is not None else _child_fields(node.__class__):
        value = getattr(node, name, None)
        if value.__class__ is list:
            out += [item for item in value if isinstance(item, node_type)]
        elif isinstance(value, node_type):
            out.append(value)
    return out


def walk(root: ast.AST) -> list[ast.AST]:
    """Every node under `root` (root first, breadth first), without the shared Load/Store/Del
    context nodes; a plain loop over each node type's child fields (looked up once per type),
    about twice as fast as ast.walk on large trees."""
    out = [root]
    append, node_type, fields_of = out.append, ast.AST, _CHILD_FIELDS.get
    for node in out:  # the list grows while it is read: each node's children go to the end
        fields = fields_of(node.__class__)
        if fields is None:
            fields = _child_fields(node.__class__)
        for name in fields:
            value = getattr(node, name, None)
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, node_type):
                        append(item)
            elif isinstance(value, node_type):
                append(value)
    return out


@dataclass
class FileContext:
    """One file as the rules see it: its text, its tree, and where it sits in a diffusers tree.

    Rules that read other files do it through `read_other`, which records the file as a
    dependency of the rule's findings, so the cache is keyed by everything a finding depends on.
    """

    path: Path
    source: str
    tree: ast.Module
    lines: list[str] = field(default_factory=list)
    # the `diffusers` package folder holding the file (None for a standalone port) and the
    # file's dotted module name inside it ("diffusers.models.attention")
    root: Path | None = None
    module: str = ""
    deps: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, path: Path, source: str) -> FileContext:
        from agent.checks.tree import module_name, package_root

        root = package_root(path)
        return cls(
            path=path, source=source, tree=ast.parse(source, filename=str(path)), lines=source.splitlines(),
            root=root, module=module_name(path, root),
        )

    @cached_property
    def statements(self) -> list[ast.stmt]:
        """Every statement (bodies of modules, classes, functions, branches, loops), without
        descending into expressions: most rules only need the file's structure, and expressions
        are most of a tree's nodes."""
        out: list[ast.stmt] = []
        stack: list[ast.AST] = [self.tree]
        while stack:
            node = stack.pop()
            if node is not self.tree:
                out.append(node)
            for name in ("body", "orelse", "finalbody"):
                block = getattr(node, name, None)
                if isinstance(block, list):
                    stack.extend(block)
            for h in getattr(node, "handlers", ()) or ():
                stack.extend(h.body)
            for case in getattr(node, "cases", ()) or ():
                stack.extend(case.body)
        out.sort(key=lambda n: (n.lineno, n.col_offset))
        return out

    @cached_property
    def _index(self) -> tuple[list[ast.AST], dict[type, list[ast.AST]]]:
        """Every node once, and nodes by type (a full traversal: only for rules that need it)."""
        nodes = walk(self.tree)
        by_type: dict[type, list[ast.AST]] = {}
        get = by_type.get
        for node in nodes:  # (setdefault would build an empty list for every node)
            same = get(node.__class__)
            if same is None:
                same = by_type[node.__class__] = []
            same.append(node)
        return nodes, by_type

    @property
    def nodes(self) -> list[ast.AST]:
        """Every node once: rules filter this instead of walking the tree again."""
        return self._index[0]

    def of_type(self, *types: type) -> list:
        """Nodes of `types` in source order (statements come from the cheap structure pass)."""
        if all(issubclass(t, ast.stmt) for t in types):
            return [n for n in self.statements if isinstance(n, types)]
        by_type = self._index[1]
        out = [n for t in types for n in by_type.get(t, [])]
        return sorted(out, key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))

    def inside(self, owner: ast.AST, *types: type) -> list:
        """Nodes of `types` anywhere under `owner` (a class or function), nested scopes included:
        the file's nodes of those types within the owner's lines (one traversal per file)."""
        key = (id(owner), types)
        memo = self.__dict__.setdefault("_inside", {})
        if key not in memo:
            lo, hi = owner.lineno, getattr(owner, "end_lineno", owner.lineno)
            by_type = self._index[1]
            memo[key] = [
                n for t in types for n in by_type.get(t, ())
                if lo <= getattr(n, "lineno", 0) <= hi and n is not owner
            ]
        return memo[key]

    def class_at(self, node: ast.AST) -> ast.ClassDef | None:
        """The innermost class whose lines hold `node`."""
        line = getattr(node, "lineno", 0)
        best = None
        for cls in self.classes.all:
            if cls.lineno <= line <= cls.end_lineno and cls is not node and (best is None or cls.lineno >= best.lineno):
                best = cls
        return best

    def outer_class_at(self, node: ast.AST) -> ast.ClassDef | None:
        line = getattr(node, "lineno", 0)
        return next((c for c in self.tree.body if isinstance(c, ast.ClassDef) and c.lineno <= line <= c.end_lineno), None)

    @cached_property
    def names(self):
        """What each name of the file stands for (imports, aliases), see agent/checks/names.py."""
        from agent.checks.names import Names

        return Names(self.tree, self.module, self.statements)

    @cached_property
    def classes(self):
        """The file's classes with their same-file ancestry, see agent/checks/classes.py."""
        from agent.checks.classes import ClassIndex

        return ClassIndex(self.tree, self.names, [n for n in self.statements if isinstance(n, ast.ClassDef)])

    def line_at(self, offset: int) -> int:
        """1-based line of a character offset in the source (for text rules' regex matches)."""
        return self.source.count("\n", 0, offset) + 1

    def read_other(self, path: Path) -> str | None:
        """Text of another file this rule's verdict depends on (recorded for the cache)."""
        from agent.checks.tree import overlaid, resolved

        self.deps.add(str(resolved(path)))
        text = overlaid(path)
        if text is not None:
            return text
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def depend(self, key: str) -> None:
        """Record a derived dependency ("copies:<root>"), digested by agent/checks/cache.py."""
        self.deps.add(key)

    @property
    def deprecated(self) -> bool:
        """Inside a `deprecated` folder of a diffusers tree (kept for old users, not maintained)."""
        from agent.checks.tree import resolved

        return self.root is not None and "deprecated" in resolved(self.path).relative_to(self.root).parts[:-1]


# A check yields (node or line number, message).
Check = Callable[[FileContext], Iterable[tuple[ast.AST | int, str]]]


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    scope: str  # models | pipelines | repository | port
    summary: str
    what: str
    why: str
    bad: str
    good: str
    anchor: str  # skills file and heading anchor, e.g. "models.md#attention-dispatch"
    check: Check
    fixable: bool = False
    # Text that must occur in a file for the rule to possibly fire: files where no rule's
    # trigger occurs skip the rule entirely.
    triggers: tuple[str, ...] = ()
    # Or a cheap text test of its own, for rules whose trigger words are everywhere.
    prefilter: Callable[[str], bool] | None = None
    # A finding of this rule makes a port's verification fail (tampering with the verdict).
    blocks_pass: bool = False
    # Whether the rule also runs on files under a `deprecated` folder of diffusers by default
    # (only the copy-consistency rules, which diffusers' own CI applies there too).
    on_deprecated: bool = False
    # Whether a plain `integrate check` runs it. Port-only rules (scope "port": what a generated
    # model file may not do) run when selected, under --port, and in check_port().
    default: bool = True

    def applies(self, source: str, searched: dict[str, bool] | None = None) -> bool:
        """`searched` remembers, for one source, which trigger texts occur in it."""
        if self.prefilter is not None:
            return self.prefilter(source)
        if searched is None:
            return not self.triggers or any(t in source for t in self.triggers)
        for t in self.triggers:
            found = searched.get(t)
            if found is None:
                found = searched[t] = t in source
            if found:
                return True
        return not self.triggers

    def run(self, ctx: FileContext) -> list[Finding]:
        out = []
        for where, message in self.check(ctx):
            line = where if isinstance(where, int) else getattr(where, "lineno", 1)
            col = 0 if isinstance(where, int) else getattr(where, "col_offset", 0)
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


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that must fail a port's verification: those of rules marked `blocks_pass`
    (tampering with the verdict), and a model file that does not parse."""
    from agent.checks import rules as _  # noqa: F401

    return [f for f in findings if f.rule == SYNTAX_ERROR or (f.rule in RULES and RULES[f.rule].blocks_pass)]
