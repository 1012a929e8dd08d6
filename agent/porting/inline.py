"""Inline the reference's local helper modules into the one model file diffusers prefers.

`from pkg.layers import Attention` (or `from .layers import ...`) where `pkg/layers.py` is part
of the reference code is replaced by the definitions it needs: the imported names and,
transitively, the module-level definitions they use, in their original order, before the
entry module's own code. Imports of the helper modules are merged. A helper name that collides
with a different definition elsewhere is renamed in its own module (scope-aware, so locals and
keyword arguments are untouched). Forms it cannot inline (`import pkg.layers as L`, star
imports) are reported, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import GlobalScope, MetadataWrapper, ScopeProvider

from agent.porting.codemods import LeftUndone


@dataclass
class InlineResult:
    code: str
    inlined: list[dict] = field(default_factory=list)  # {"module", "names"}
    renamed: list[dict] = field(default_factory=list)  # {"module", "from", "to"}
    left: list[LeftUndone] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)  # entry-module definitions the model does not use
    kept: dict[str, set[str]] = field(default_factory=dict)  # file -> module-level names in the port


def kept_lines(source: str, names: set[str]) -> list[tuple[int, int]]:
    """Line spans (1-based, inclusive) of the module-level statements that bind `names` or bind
    nothing (statements with effects are kept as they are)."""
    import ast

    spans = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        bound = {node.name} if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else {
            t.id for n in ast.walk(node) for t in ([n] if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) else [])
        }
        if bound & names or not bound:
            start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            spans.append((start, node.end_lineno))
    return spans


def _module_name(rel: str) -> str:
    parts = list(Path(rel).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: cst.ImportFrom, current: str, is_package: bool) -> str:
    module = cst.helpers.get_full_name_for_node(node.module) if node.module else ""
    level = len(node.relative)
    if not level:
        return module
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, module] if module else base)


def _defined_names(stmt: cst.CSTNode) -> set[str]:
    """Module-level names a statement binds."""
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
        return {stmt.name.value}
    names: set[str] = set()

    class Collect(cst.CSTVisitor):
        def visit_AssignTarget(self, node):
            for n in _target_names(node.target):
                names.add(n)

        def visit_AnnAssign(self, node):
            names.update(_target_names(node.target))

        def visit_ImportAlias(self, node):
            names.add(node.evaluated_alias or cst.helpers.get_full_name_for_node(node.name).split(".")[0])

        def visit_FunctionDef(self, node):
            names.add(node.name.value)
            return False

        def visit_ClassDef(self, node):
            names.add(node.name.value)
            return False

    stmt.visit(Collect())
    return names


def _target_names(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for el in target.elements for n in _target_names(el.value)]
    return []


def _used_names(stmt: cst.CSTNode) -> set[str]:
    names: set[str] = set()

    class Collect(cst.CSTVisitor):
        def visit_Name(self, node):
            names.add(node.value)

    stmt.visit(Collect())
    return names


def _is_import(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body)


def _is_main_guard(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.If) and "__main__" in cst.Module([]).code_for_node(stmt.test)


class _RenameGlobal(cst.CSTTransformer):
    """Rename a module-level binding and every reference that resolves to it."""

    METADATA_DEPENDENCIES = (ScopeProvider,)

    def __init__(self, old: str, new: str):
        self.old, self.new = old, new
        self.targets: set[cst.Name] = set()

    def visit_Module(self, node: cst.Module) -> None:
        scope = self.get_metadata(ScopeProvider, node)
        assert isinstance(scope, GlobalScope)
        for assignment in scope.assignments[self.old]:
            if isinstance(assignment.node, (cst.FunctionDef, cst.ClassDef)):
                self.targets.add(assignment.node.name)
            elif isinstance(assignment.node, cst.Name):
                self.targets.add(assignment.node)
        for access in scope.accesses[self.old]:
            if isinstance(access.node, cst.Name):
                self.targets.add(access.node)

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        return updated.with_changes(value=self.new) if original in self.targets else updated


def _rename(module: cst.Module, old: str, new: str) -> cst.Module:
    return MetadataWrapper(module).visit(_RenameGlobal(old, new))


@dataclass
class _Helper:
    name: str
    module: cst.Module
    order: int


class _Inliner:
    def __init__(self, snapshot: Path, code_files: list[str], sources: dict[str, str] | None = None):
        self.snapshot = snapshot
        self.sources = sources or {}
        self.files = {_module_name(f): f for f in code_files if f.endswith(".py")}
        self.result = InlineResult(code="")
        self.needed: dict[str, set[str]] = {}  # module -> names requested from it
        self.modules: dict[str, cst.Module] = {}
        self.deps: dict[str, set[str]] = {}

    def parse(self, module: str) -> cst.Module:
        if module not in self.modules:
            rel = self.files[module]
            text = self.sources[rel] if rel in self.sources else (self.snapshot / rel).read_text()
            self.modules[module] = cst.parse_module(text)
        return self.modules[module]

    def local_imports(self, module: str, tree: cst.Module) -> list[tuple[cst.CSTNode, str, list[str] | None]]:
        """(statement, local module, imported names or None for unsupported forms)."""
        out = []
        is_package = self.files[module].endswith("__init__.py")
        for stmt in tree.body:
            if not _is_import(stmt):
                continue
            for imp in stmt.body:
                if isinstance(imp, cst.ImportFrom):
                    target = _resolve(imp, module, is_package)
                    if target in self.files:
                        if isinstance(imp.names, cst.ImportStar):
                            out.append((stmt, target, None))
                        else:
                            out.append((stmt, target, [(a.name.value, a.evaluated_alias) for a in imp.names]))
                elif isinstance(imp, cst.Import):
                    for alias in imp.names:
                        name = cst.helpers.get_full_name_for_node(alias.name)
                        if name in self.files:
                            out.append((stmt, name, None))
        return out

    def collect(self, module: str, names: set[str], stack: tuple[str, ...] = ()) -> None:
        """Record that `names` are needed from helper `module`, recursively through its own local imports."""
        if module in stack:
            return
        known = self.needed.setdefault(module, set())
        if names <= known and module in self.deps:
            return
        known |= names
        self.deps.setdefault(module, set())
        tree = self.parse(module)
        # the closure of needed definitions inside this module
        defs = [(stmt, _defined_names(stmt)) for stmt in tree.body if not _is_import(stmt) and not _is_main_guard(stmt)]
        wanted = _closure(defs, known)
        self.needed[module] = wanted
        for _stmt, target, imported in self.local_imports(module, tree):
            if imported is None:
                continue
            used = {alias or name for name, alias in imported} & _used_names_in(defs, wanted)
            sources = {name for name, alias in imported if (alias or name) in used}
            if sources:
                self.deps[module].add(target)
                self.collect(target, sources, (*stack, module))

    def order(self, roots: list[str]) -> list[str]:
        """Helper modules, each after the helpers it depends on."""
        seen: set[str] = set()
        out: list[str] = []

        def visit(module: str) -> None:
            if module in seen:
                return
            seen.add(module)
            for dep in sorted(self.deps.get(module, ())):
                visit(dep)
            out.append(module)

        for root in roots:
            visit(root)
        return out


def _used_names_in(defs, wanted: set[str]) -> set[str]:
    used: set[str] = set()
    for stmt, bound in defs:
        if bound & wanted:
            used |= _used_names(stmt)
    return used


def _closure(defs: list[tuple[cst.CSTNode, set[str]]], roots: set[str]) -> set[str]:
    """Names transitively needed by `roots` among module-level definitions."""
    known = {n for _, b in defs for n in b}
    wanted, frontier = set(), set(roots)
    while frontier:
        name = frontier.pop()
        wanted.add(name)
        for stmt, bound in defs:
            if name in bound:
                frontier |= (_used_names(stmt) & known) - wanted
    return wanted


def prune_to(tree: cst.Module, top: str) -> tuple[cst.Module, list[str]]:
    """Keep imports and the definitions `top` needs; drop the rest (training loops, samplers)."""
    defs = [(stmt, _defined_names(stmt)) for stmt in tree.body if not _is_import(stmt)]
    wanted = _closure(defs, {top})
    body, dropped = [], []
    for stmt in tree.body:
        if _is_import(stmt):
            body.append(stmt)
            continue
        bound = _defined_names(stmt)
        if bound & wanted or (not bound and not _is_main_guard(stmt) and not isinstance(stmt, (cst.FunctionDef, cst.ClassDef))):
            body.append(stmt)  # needed, or a statement with effects we keep as it is
        else:
            dropped += sorted(bound) or ["__main__ block"]
    return tree.with_changes(body=body), dropped


def inline_local_imports(
    snapshot: Path, entry_file: str, code_files: list[str], sources: dict[str, str] | None = None, top: str | None = None
) -> InlineResult:
    """`sources` optionally replaces file contents (e.g. after per-file codemods); with `top`, the
    entry module keeps only what that class needs."""
    inliner = _Inliner(snapshot, code_files, sources)
    entry = _module_name(entry_file)
    inliner.files.setdefault(entry, entry_file)
    tree = inliner.parse(entry)
    result = inliner.result
    if top:
        tree, result.pruned = prune_to(tree, top)
    result.kept[entry_file] = {n for stmt in tree.body if not _is_import(stmt) for n in _defined_names(stmt)}

    local = inliner.local_imports(entry, tree)
    used_in_entry = {n for stmt in tree.body if not _is_import(stmt) for n in _used_names(stmt)}
    local = [
        (stmt, target, None if imported is None else [(n, a) for n, a in imported if (a or n) in used_in_entry])
        for stmt, target, imported in local
    ]
    for stmt, target, imported in local:
        if imported is None:
            line = next((i + 1 for i, s in enumerate(tree.body) if s is stmt), 0)
            result.left.append(LeftUndone(line, f"import of local module {target}", "module or star import: inline by hand"))
            continue
        if imported:
            inliner.collect(target, {name for name, _ in imported})
    if not inliner.needed:
        result.code = tree.code
        return result

    # Names the entry binds itself (they win; helpers that collide are renamed).
    taken: dict[str, str] = {}
    for stmt in tree.body:
        if not _is_import(stmt):
            for n in _defined_names(stmt):
                taken[n] = cst.Module([]).code_for_node(stmt)
    import_aliases: dict[str, dict[str, str]] = {}  # module -> {local alias in importer: source name}

    helper_imports: list[str] = []
    helper_code: list[str] = []
    renames_for_entry: dict[str, str] = {}
    for module in inliner.order([t for _, t, imported in local if imported]):
        mtree = inliner.parse(module)
        wanted = inliner.needed[module]
        # rename collisions inside the helper module
        for stmt in mtree.body:
            if _is_import(stmt) or _is_main_guard(stmt):
                continue
            for name in _defined_names(stmt) & wanted:
                code = cst.Module([]).code_for_node(stmt)
                if name in taken and taken[name] != code:
                    new = f"{name}_{module.split('.')[-1]}"
                    mtree = _rename(mtree, name, new)
                    result.renamed.append({"module": module, "from": name, "to": new})
                    import_aliases.setdefault(module, {})[name] = new
        inliner.modules[module] = mtree
        kept: list[str] = []
        for stmt in mtree.body:
            if _is_main_guard(stmt):
                continue
            if _is_import(stmt):
                if not any(t in inliner.files for t in _import_targets(stmt, module, inliner)):
                    helper_imports.append(cst.Module([]).code_for_node(stmt).strip())
                continue
            bound = _defined_names(stmt)
            renamed_bound = {import_aliases.get(module, {}).get(n, n) for n in bound}
            wanted_here = {import_aliases.get(module, {}).get(n, n) for n in wanted}
            if renamed_bound & wanted_here:
                code = cst.Module([]).code_for_node(stmt)
                if all(taken.get(n) == code for n in renamed_bound):
                    continue  # identical definition already present
                for n in renamed_bound:
                    taken[n] = code
                kept.append(code)
        result.kept[inliner.files[module]] = set(wanted)
        if kept:
            helper_code.append(f"# ---- from {inliner.files[module]} ----\n" + "\n".join(kept))
            result.inlined.append({"module": inliner.files[module], "names": sorted(wanted)})

    # The entry's local imports go; names it imported under a renamed helper name follow.
    for _stmt, target, imported in local:
        if imported is None:
            continue
        for name, alias in imported:
            new = import_aliases.get(target, {}).get(name)
            if new and (alias or name) != new:
                renames_for_entry[alias or name] = new
            elif alias and alias != name:
                renames_for_entry[alias] = name
    local_stmts = {id(stmt) for stmt, _, imported in local if imported is not None}
    body = [s for s in tree.body if id(s) not in local_stmts]
    tree = tree.with_changes(body=body)
    for old, new in renames_for_entry.items():
        tree = _rename(tree, old, new)

    existing = {cst.Module([]).code_for_node(s).strip() for s in tree.body if _is_import(s)}
    extra_imports = list(dict.fromkeys(i for i in helper_imports if i not in existing))
    from agent.porting.config_capture import insert_after_imports

    tree = insert_after_imports(tree, "\n".join(extra_imports) + "\n\n" + "\n\n".join(helper_code) + "\n" if extra_imports else "\n\n".join(helper_code) + "\n")
    result.code = tree.code
    return result


def _import_targets(stmt: cst.SimpleStatementLine, module: str, inliner: _Inliner) -> list[str]:
    out = []
    is_package = inliner.files[module].endswith("__init__.py")
    for imp in stmt.body:
        if isinstance(imp, cst.ImportFrom):
            out.append(_resolve(imp, module, is_package))
        elif isinstance(imp, cst.Import):
            out += [cst.helpers.get_full_name_for_node(a.name) for a in imp.names]
    return out
