"""The reference's own modules as the inliner sees them.

For one module: the statements that bind each top-level name, and for every import at any
depth (module level, inside a function, inside `try`) what it points at: a definition in
another reference module, a reference module used as an object (`from . import flags`,
`import pkg.layers as L`), a reference module that is not there, or a third-party/stdlib name.
Parsing only; nothing here runs the reference.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import (
    GlobalScope,
    ImportAssignment,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    ScopeProvider,
)


class InlineError(Exception):
    """The port would use a name it cannot define: stops the port with the reference location."""

    def __init__(self, file: str, line: int, message: str):
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line, self.message = file, line, message


def module_name(rel: str) -> str:
    parts = list(Path(rel).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def full_name(node: cst.CSTNode | None) -> str:
    return (cst.helpers.get_full_name_for_node(node) or "") if node is not None else ""


def code_of(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def is_import(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body)


def is_main_guard(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.If) and "__main__" in code_of(stmt.test)


def defined_names(stmt: cst.CSTNode) -> set[str]:
    """Top-level names a statement binds (imports nested in `try`/`if` included)."""
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
        return {stmt.name.value}
    names: set[str] = set()

    class Collect(cst.CSTVisitor):
        def visit_AssignTarget(self, node):
            names.update(target_names(node.target))

        def visit_AnnAssign(self, node):
            names.update(target_names(node.target))

        def visit_AugAssign(self, node):
            names.update(target_names(node.target))

        def visit_For(self, node):
            names.update(target_names(node.target))

        def visit_ImportAlias(self, node):
            names.add(node.evaluated_alias or full_name(node.name).split(".")[0])

        def visit_FunctionDef(self, node):
            names.add(node.name.value)
            return False

        def visit_ClassDef(self, node):
            names.add(node.name.value)
            return False

    stmt.visit(Collect())
    return names


def target_names(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for el in target.elements for n in target_names(el.value)]
    if isinstance(target, cst.StarredElement):
        return target_names(target.value)
    return []


def used_names(node: cst.CSTNode) -> set[str]:
    names: set[str] = set()

    class Collect(cst.CSTVisitor):
        def visit_Name(self, n):
            names.add(n.value)

    node.visit(Collect())
    return names


@dataclass(frozen=True)
class Imported:
    """What one imported name points at."""

    kind: str  # "name" (a definition in a reference module), "module", "extern", "missing"
    target: str  # reference module, or the third-party dotted path for "extern"
    source: str | None = None  # the name taken from `target` ("name")
    statement: str = ""  # the import as code, one alias (for "extern": what the port keeps)


@dataclass
class ImportBinding:
    assignment: ImportAssignment
    imported: Imported
    alias: cst.ImportAlias
    statement: cst.CSTNode  # the Import/ImportFrom node
    top_index: int  # the top-level statement holding it
    module_level: bool  # bound in the module's global scope by a plain import line


@dataclass
class RefModule:
    name: str
    rel: str
    original: str  # the reference text, for locations
    tree: cst.Module
    is_package: bool
    defs: dict[str, list[int]] = field(default_factory=dict)  # name -> top-level statements binding it
    imports: list[ImportBinding] = field(default_factory=list)
    globals: GlobalScope | None = None
    parents: dict = field(default_factory=dict)
    positions: dict = field(default_factory=dict)

    @property
    def stmts(self) -> list[cst.CSTNode]:
        return list(self.tree.body)

    def top_level_import(self, name: str) -> ImportBinding | None:
        return next((b for b in self.imports if b.module_level and b.assignment.name == name), None)

    def top_index(self, node: cst.CSTNode) -> int:
        """The top-level statement holding `node` (decorators included)."""
        while self.parents.get(node) is not None and self.parents[node] is not self.tree:
            node = self.parents[node]
        return next(i for i, stmt in enumerate(self.tree.body) if stmt is node)

    def line_of_import(self, name: str) -> int:
        for node in ast.walk(ast.parse(self.original)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    if (alias.asname or alias.name) == name or alias.name.split(".")[0] == name:
                        return node.lineno
        return 1


class ReferenceModules:
    """Lazily parsed reference modules, by dotted name."""

    def __init__(self, snapshot: Path, code_files: list[str], sources: dict[str, str] | None = None):
        self.snapshot = snapshot
        self.sources = sources or {}
        self.files = {module_name(f): f for f in code_files if f.endswith(".py")}
        self.top_packages = {m.split(".")[0] for m in self.files}
        self._parsed: dict[str, RefModule] = {}

    def add(self, rel: str) -> str:
        name = module_name(rel)
        self.files.setdefault(name, rel)
        return name

    def __contains__(self, module: str) -> bool:
        return module in self.files

    def get(self, module: str) -> RefModule:
        if module not in self._parsed:
            rel = self.files[module]
            original = (self.snapshot / rel).read_text()
            text = self.sources.get(rel, original)
            self._parsed[module] = self._analyse(module, rel, original, text)
        return self._parsed[module]

    def _analyse(self, module: str, rel: str, original: str, text: str) -> RefModule:
        wrapper = MetadataWrapper(cst.parse_module(text))
        scopes = wrapper.resolve(ScopeProvider)
        ref = RefModule(
            name=module, rel=rel, original=original, tree=wrapper.module, is_package=rel.endswith("__init__.py"),
            parents=wrapper.resolve(ParentNodeProvider), positions=wrapper.resolve(PositionProvider),
        )
        for i, stmt in enumerate(ref.tree.body):
            if is_import(stmt) or is_main_guard(stmt):
                continue
            for n in defined_names(stmt):
                ref.defs.setdefault(n, []).append(i)
        ref.globals = next((s for s in set(scopes.values()) if isinstance(s, GlobalScope)), None)
        for scope in {s for s in scopes.values() if s is not None}:
            for assignment in scope.assignments:
                if isinstance(assignment, ImportAssignment):
                    ref.imports.append(self._binding(ref, scope, assignment))
        ref.imports.sort(key=lambda b: (ref.positions[b.statement].start.line, b.assignment.name))
        return ref

    def _binding(self, ref: RefModule, scope, assignment: ImportAssignment) -> ImportBinding:
        node = assignment.node
        alias = next(a for a in node.names if _alias_binds(a, assignment.name)) if not isinstance(node.names, cst.ImportStar) else None
        top = ref.top_index(node)
        module_level = isinstance(scope, GlobalScope) and is_import(ref.tree.body[top])
        return ImportBinding(assignment, self.resolve(ref, node, alias), alias, node, top, module_level)

    def resolve(self, ref: RefModule, node: cst.Import | cst.ImportFrom, alias: cst.ImportAlias) -> Imported:
        as_part = f" as {alias.evaluated_alias}" if alias.asname is not None else ""
        if isinstance(node, cst.Import):
            statement = f"import {full_name(alias.name)}{as_part}"
        else:
            statement = f"from {'.' * len(node.relative)}{full_name(node.module) if node.module else ''} import {full_name(alias.name)}{as_part}"
        if isinstance(node, cst.Import):
            dotted = full_name(alias.name)
            if dotted in self.files:
                return Imported("module", dotted, statement=statement)
            if self._is_local(dotted, 0):
                return Imported("missing", dotted, statement=statement)
            return Imported("extern", dotted, statement=statement)
        base = self.from_module(ref, node)
        name = full_name(alias.name)
        if f"{base}.{name}".strip(".") in self.files:
            return Imported("module", f"{base}.{name}".strip("."), statement=statement)
        if base in self.files:
            return Imported("name", base, name, statement=statement)
        if self._is_local(base, len(node.relative)):
            return Imported("missing", f"{base}.{name}".strip("."), name, statement=statement)
        return Imported("extern", f"{base}.{name}", statement=statement)

    def from_module(self, ref: RefModule, node: cst.ImportFrom) -> str:
        module = full_name(node.module) if node.module else ""
        level = len(node.relative)
        if not level:
            return module
        base = ref.name.split(".") if ref.is_package else ref.name.split(".")[:-1]
        base = base[: len(base) - (level - 1)] if level > 1 else base
        return ".".join([*base, module] if module else base)

    def _is_local(self, dotted: str, level: int) -> bool:
        return level > 0 or dotted.split(".")[0] in self.top_packages

    def star_names(self, module: str) -> list[str]:
        """What `from module import *` binds: its `__all__` when literal, else its public names."""
        ref = self.get(module)
        for stmt in ref.tree.body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for s in stmt.body:
                    if isinstance(s, cst.Assign) and any(full_name(t.target) == "__all__" for t in s.targets):
                        try:
                            return list(ast.literal_eval(code_of(s.value)))
                        except ValueError:
                            pass
        names = set(ref.defs) | {b.assignment.name for b in ref.imports if b.module_level}
        return sorted(n for n in names if not n.startswith("_") and "." not in n)


def _alias_binds(alias: cst.ImportAlias, name: str) -> bool:
    if alias.asname is not None:
        return alias.evaluated_alias == name
    dotted = full_name(alias.name)
    return dotted == name or dotted.split(".")[0] == name
