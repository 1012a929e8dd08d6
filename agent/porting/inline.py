"""Inline the reference's own modules into the one model file diffusers prefers.

Every import of a reference module is followed, at any depth (module level, inside a function,
inside `try`), in every form real repos use: `from .layers import Attention`,
`from pkg.layers import *`, `from . import flags` / `from .. import layers` /
`import pkg.layers as L` (module objects: `flags.USE_FOO` becomes the inlined `USE_FOO`).
The port gets the definitions the top-level class needs, transitively, each module's in its
original order and after the modules it depends on. A name that collides with a different
definition is renamed with every reference that resolves to it, in nested functions and
classes too (scope analysis, not text). Identical definitions (same text, same dependencies)
are kept once. What cannot be inlined faithfully (a reference module used as an object, a
module attribute assigned, an import of a reference module that is not there, a name a
module does not define) stops the port with the reference file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

from agent.porting.codemods import LeftUndone
from agent.porting.modules import (
    ImportBinding,
    InlineError,
    ReferenceModules,
    RefModule,
    code_of,
    defined_names,
    full_name,
    is_import,
    is_main_guard,
    used_names,
)

__all__ = ["InlineError", "InlineResult", "inline_local_imports", "kept_lines"]


@dataclass
class InlineResult:
    code: str
    inlined: list[dict] = field(default_factory=list)  # {"module", "names", "via"}
    renamed: list[dict] = field(default_factory=list)  # {"module", "from", "to"}
    left: list[LeftUndone] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)  # entry-module definitions the model does not use
    kept: dict[str, set[str]] = field(default_factory=dict)  # file -> module-level names in the port
    dropped_statements: list[dict] = field(default_factory=list)  # helper-module statements run at import


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


class _Closure:
    """Which top-level statements of which reference modules the port needs."""

    def __init__(self, modules: ReferenceModules):
        self.mods = modules
        self.kept: dict[str, set[int]] = {}
        self.externs: dict[str, set[str]] = {}  # module -> module-level third-party bindings kept
        self.deps: dict[str, set[str]] = {}
        self.via: dict[str, set[str]] = {}  # module -> the imports that reached it
        self.stars: dict[str, dict[str, str]] = {}  # module -> {name: module it comes from by `import *`}
        self._seen: set[tuple[str, str]] = set()

    def need(self, module: str, name: str, importer: tuple[RefModule, ImportBinding | str] | None = None) -> None:
        if (module, name) in self._seen:
            return
        self._seen.add((module, name))
        ref = self.mods.get(module)
        if name in ref.defs:
            for i in ref.defs[name]:
                self.keep(ref, i)
            return
        binding = ref.top_level_import(name)
        if binding is not None:
            self.follow(ref, binding)
            return
        star = self._star_source(ref, name)
        if star:
            target, statement = star
            self.stars.setdefault(module, {})[name] = target
            self.deps.setdefault(module, set()).add(target)
            self.via.setdefault(target, set()).add(statement)
            self.need(target, name, (ref, statement))
            return
        if importer is not None:
            src, how = importer
            what = how if isinstance(how, str) else how.imported.statement
            line = src.line_of_import(name) if not isinstance(how, str) else 1
            raise InlineError(src.rel, line, f"`{what}`: {ref.rel} does not define {name!r}")

    def _star_source(self, ref: RefModule, name: str) -> tuple[str, str] | None:
        for stmt in ref.tree.body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for s in stmt.body:
                    if isinstance(s, cst.ImportFrom) and isinstance(s.names, cst.ImportStar):
                        target = self.mods.from_module(ref, s)
                        if target in self.mods and name in self.mods.star_names(target):
                            return target, code_of(s)
        return None

    def follow(self, ref: RefModule, binding: ImportBinding) -> None:
        imp = binding.imported
        if imp.kind == "extern":
            if binding.module_level:
                self.externs.setdefault(ref.name, set()).add(binding.assignment.name)
            return
        if imp.kind == "missing":
            if binding.assignment.references or binding.module_level:
                line = ref.line_of_import(binding.assignment.name)
                raise InlineError(ref.rel, line, f"`{imp.statement}` imports {imp.target}, which is not in the reference code (add the file to the source folder)")
            return
        self.deps.setdefault(ref.name, set()).add(imp.target)
        self.via.setdefault(imp.target, set()).add(imp.statement)
        if imp.kind == "name":
            self.need(imp.target, imp.source, (ref, binding))

    def keep(self, ref: RefModule, index: int) -> None:
        kept = self.kept.setdefault(ref.name, set())
        if index in kept:
            return
        kept.add(index)
        stmt = ref.tree.body[index]
        for name in sorted(used_names(stmt)):
            self.need(ref.name, name)
        for binding in ref.imports:
            inside = binding.top_index == index
            if inside and not binding.module_level and binding.imported.kind in ("name", "missing", "module"):
                self.follow(ref, binding)
            if binding.imported.kind == "module" and (inside or binding.module_level):
                for attr in self.module_attributes(ref, binding, index):
                    self.need(binding.imported.target, attr, (ref, binding))

    def module_attributes(self, ref: RefModule, binding: ImportBinding, index: int) -> list[str]:
        """`flags.X` -> X for every use of an imported reference module inside statement `index`."""
        attrs = []
        for access in binding.assignment.references:
            node = access.node
            if ref.top_index(node) != index:
                continue
            parent = ref.parents.get(node)
            line = ref.positions[node].start.line
            if not (isinstance(parent, cst.Attribute) and parent.value is node):
                raise InlineError(ref.rel, _original_line(ref, line), f"the reference module {binding.imported.target} is used as an object ({binding.assignment.name}); only `{binding.assignment.name}.NAME` can be inlined")
            holder = ref.parents.get(parent)
            if isinstance(holder, (cst.AssignTarget, cst.AugAssign)) and getattr(holder, "target", None) is parent:
                raise InlineError(ref.rel, _original_line(ref, line), f"assigns {full_name(parent)}: module state of {binding.imported.target} cannot be inlined")
            attrs.append(parent.attr.value)
        return attrs

    def order(self, entry: str) -> list[str]:
        """Helper modules, each after the modules it depends on (the entry excluded)."""
        seen: set[str] = set()
        out: list[str] = []

        def visit(module: str) -> None:
            if module in seen:
                return
            seen.add(module)
            for dep in sorted(self.deps.get(module, ())):
                visit(dep)
            out.append(module)

        visit(entry)
        return [m for m in out if m != entry and (self.kept.get(m) or self.externs.get(m))]


def _original_line(ref: RefModule, line: int) -> int:
    """A line of the codemodded text mapped to the reference text (same statement text)."""
    text = ref.tree.code.splitlines()
    wanted = text[line - 1].strip() if 0 < line <= len(text) else ""
    for i, original in enumerate(ref.original.splitlines(), 1):
        if wanted and original.strip() == wanted:
            return i
    return line


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, cst.Expr) and isinstance(s.value, (cst.SimpleString, cst.ConcatenatedString)) for s in stmt.body)


class _Names:
    """The name each kept binding gets in the port: the entry's win, helpers that collide with
    a different definition are renamed `<name>_<module>`."""

    def __init__(self, modules: ReferenceModules, closure: _Closure):
        self.mods, self.closure = modules, closure
        self.final: dict[tuple[str, str], str] = {}
        self.owner: dict[str, tuple[str, str]] = {}  # port name -> (module, name) it holds
        self.duplicates: set[tuple[str, str]] = set()  # bindings identical to one already in the port

    def claim(self, module: str, name: str, rename_ok: bool) -> tuple[str, bool]:
        """(port name, is a duplicate of what is there)."""
        holder = self.owner.get(name)
        if holder is None or holder == (module, name):
            self.owner[name] = (module, name)
            self.final[(module, name)] = name
            return name, False
        if self.equivalent(holder, (module, name), set()):
            self.final[(module, name)] = name
            self.duplicates.add((module, name))
            return name, True
        if not rename_ok:
            return name, False
        short = module.split(".")[-1] or "mod"
        new, n = f"{name}_{short}", 2
        while new in self.owner or self._bound_anywhere(new):
            new, n = f"{name}_{short}{n}", n + 1
        self.owner[new] = (module, name)
        self.final[(module, name)] = new
        return new, False

    def _bound_anywhere(self, name: str) -> bool:
        return any(name in self.mods.get(m).defs for m in self.closure.kept)

    def canon(self, module: str, name: str, depth: int = 0) -> tuple:
        ref = self.mods.get(module)
        if name in ref.defs:
            return ("def", module, name)
        binding = ref.top_level_import(name)
        if binding is not None and depth < 20:
            imp = binding.imported
            if imp.kind == "name":
                return self.canon(imp.target, imp.source, depth + 1)
            return (imp.kind, imp.target)
        star = self.closure.stars.get(module, {}).get(name)
        if star and depth < 20:
            return self.canon(star, name, depth + 1)
        return ("free", name)

    def equivalent(self, a: tuple[str, str], b: tuple[str, str], assumed: set) -> bool:
        ca, cb = self.canon(*a), self.canon(*b)
        if ca == cb:
            return True
        if ca[0] != "def" or cb[0] != "def":
            return ca[0] == cb[0] == "extern" and ca[1] == cb[1]
        if (ca, cb) in assumed:
            return True
        assumed.add((ca, cb))
        ra, rb = self.mods.get(ca[1]), self.mods.get(cb[1])
        sa = [ra.tree.body[i] for i in ra.defs[ca[2]]]
        sb = [rb.tree.body[i] for i in rb.defs[cb[2]]]
        if [code_of(s) for s in sa] != [code_of(s) for s in sb]:
            return False
        used = set().union(*(used_names(s) for s in sa)) - {ca[2]}
        return all(self.equivalent((ca[1], u), (cb[1], u), assumed) for u in sorted(used) if self._is_global(ra, u) or self._is_global(rb, u))

    def _is_global(self, ref: RefModule, name: str) -> bool:
        return name in ref.defs or ref.top_level_import(name) is not None or name in self.closure.stars.get(ref.name, {})

    def of(self, module: str, name: str, depth: int = 0) -> str:
        """The port name of what `name` means in `module`."""
        if (module, name) in self.final:
            return self.final[(module, name)]
        ref = self.mods.get(module)
        binding = ref.top_level_import(name)
        if binding is not None and binding.imported.kind == "name" and depth < 20:
            return self.of(binding.imported.target, binding.imported.source, depth + 1)
        star = self.closure.stars.get(module, {}).get(name)
        if star and depth < 20:
            return self.of(star, name, depth + 1)
        return name


class _Rewrite(cst.CSTTransformer):
    """Applies the renames of one module: Name nodes, `module.attr` accesses, import aliases."""

    def __init__(self, names: dict, attrs: dict, drop: set, realias: dict, by_name: dict[str, str]):
        self.names, self.attrs, self.drop, self.realias, self.by_name = names, attrs, drop, realias, by_name

    def leave_Name(self, original, updated):
        if original in self.names:
            return updated.with_changes(value=self.names[original])
        return updated

    def leave_Attribute(self, original, updated):
        if original in self.attrs:
            return cst.Name(self.attrs[original])
        return updated

    def _import(self, original, updated):
        if isinstance(updated.names, cst.ImportStar):
            return updated
        names = []
        for before, after in zip(original.names, updated.names, strict=True):
            if before in self.drop:
                continue
            if before in self.realias:
                after = after.with_changes(asname=cst.AsName(name=cst.Name(self.realias[before])))
            names.append(after)
        if not names:
            return cst.RemovalSentinel.REMOVE
        names[-1] = names[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated.with_changes(names=names)

    leave_Import = _import
    leave_ImportFrom = _import

    def leave_Global(self, original, updated):
        return updated.with_changes(names=[n.with_changes(name=cst.Name(self.by_name.get(n.name.value, n.name.value))) for n in updated.names])

    def leave_IndentedBlock(self, original, updated):
        if not updated.body:
            return updated.with_changes(body=[cst.SimpleStatementLine([cst.Pass()])])
        return updated


def _rewriter(ref: RefModule, names: _Names, closure: _Closure, mods: ReferenceModules) -> tuple[_Rewrite, dict]:
    rename_nodes: dict = {}
    attrs: dict = {}
    drop: set = set()
    realias: dict = {}
    by_name: dict[str, str] = {}
    if ref.globals is not None:
        for assignment in ref.globals.assignments:
            new = names.final.get((ref.name, assignment.name))
            if new is None or new == assignment.name:
                continue
            by_name[assignment.name] = new
            node = assignment.node
            if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                rename_nodes[node.name] = new
            elif isinstance(node, cst.Name):
                rename_nodes[node] = new
            elif isinstance(node, (cst.Import, cst.ImportFrom)):
                continue  # a third-party import: re-aliased below
            for access in assignment.references:
                if isinstance(access.node, cst.Name):
                    rename_nodes[access.node] = new
    for binding in ref.imports:
        imp = binding.imported
        if imp.kind == "extern":
            new = names.final.get((ref.name, binding.assignment.name)) if binding.module_level else None
            if new and new != binding.assignment.name:
                realias[binding.alias] = new
                for access in binding.assignment.references:
                    if isinstance(access.node, cst.Name):
                        rename_nodes[access.node] = new
            continue
        drop.add(binding.alias)
        for access in binding.assignment.references:
            node = access.node
            if imp.kind == "name":
                rename_nodes[node] = names.of(imp.target, imp.source)
            elif imp.kind == "module":
                parent = ref.parents.get(node)
                if isinstance(parent, cst.Attribute) and parent.value is node:
                    attrs[parent] = names.of(imp.target, parent.attr.value)
    star_names = {}
    for name, star in closure.stars.get(ref.name, {}).items():
        new = names.of(star, name)
        if new != name:
            star_names[name] = new
    # `from .x import *`: the statement goes, the names it brought are inlined
    star_drop = {id(s) for stmt in ref.tree.body if isinstance(stmt, cst.SimpleStatementLine) for s in stmt.body
                 if isinstance(s, cst.ImportFrom) and isinstance(s.names, cst.ImportStar) and mods.from_module(ref, s) in mods}
    return _Rewrite(rename_nodes, attrs, drop, realias, by_name), {"star_drop": star_drop, "star_names": star_names}


def _apply(stmt: cst.CSTNode, rewrite: _Rewrite, extra: dict) -> cst.CSTNode | None:
    if isinstance(stmt, cst.SimpleStatementLine):
        body = [s for s in stmt.body if id(s) not in extra["star_drop"]]
        if not body:
            return None
        stmt = stmt.with_changes(body=body) if len(body) != len(stmt.body) else stmt
    out = stmt.visit(rewrite)
    if isinstance(out, cst.RemovalSentinel) or (isinstance(out, cst.SimpleStatementLine) and not out.body):
        return None
    if extra["star_names"]:
        out = out.visit(_RenameByValue(extra["star_names"]))
    return out


class _RenameByValue(cst.CSTTransformer):
    """Names brought in by `from .x import *` have no binding to follow: renamed by value."""

    def __init__(self, renames: dict[str, str]):
        self.renames = renames

    def leave_Name(self, original, updated):
        return updated.with_changes(value=self.renames[updated.value]) if updated.value in self.renames else updated


def inline_local_imports(
    snapshot: Path, entry_file: str, code_files: list[str], sources: dict[str, str] | None = None, top: str | None = None,
    also: tuple[str, ...] = (),
) -> InlineResult:
    """The entry module with every reference module it uses inlined. `sources` optionally
    replaces file contents (the per-file codemods); with `top`, the entry module keeps only what
    that class needs (training loops and samplers in the same file are dropped and listed), and
    the entry module's names in `also`.
    Raises InlineError (file, line, what) for what cannot be inlined faithfully."""
    mods = ReferenceModules(snapshot, code_files, sources)
    entry = mods.add(entry_file)
    ref = mods.get(entry)
    result = InlineResult(code="")
    closure = _Closure(mods)
    roots = [top, *also] if top else sorted(ref.defs)
    for name in roots:
        closure.need(entry, name)
    for i, stmt in enumerate(ref.tree.body):  # statements with effects stay, with what they use
        if not is_import(stmt) and not is_main_guard(stmt) and not defined_names(stmt) and not isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            closure.keep(ref, i)
    kept_entry = closure.kept.get(entry, set())
    result.pruned = sorted({n for i, s in enumerate(ref.tree.body) if i not in kept_entry and not is_import(s) for n in defined_names(s)} - {
        n for i in kept_entry for n in defined_names(ref.tree.body[i])})
    if any(is_main_guard(s) for s in ref.tree.body):
        result.pruned.append("__main__ block")

    names = _Names(mods, closure)
    for i in sorted(kept_entry):
        for n in defined_names(ref.tree.body[i]):
            names.claim(entry, n, rename_ok=False)
    for b in ref.imports:
        if b.module_level and b.imported.kind == "extern":
            names.claim(entry, b.assignment.name, rename_ok=False)
    helpers = closure.order(entry)
    skip: dict[str, set[int]] = {}
    for module in helpers:
        mref = mods.get(module)
        for b in mref.imports:
            if b.module_level and b.imported.kind == "extern" and b.assignment.name in closure.externs.get(module, set()):
                new, dup = names.claim(module, b.assignment.name, rename_ok=True)
                if dup:
                    skip.setdefault(module, set()).add(id(b.alias))
        for i in sorted(closure.kept.get(module, ())):
            bound = defined_names(mref.tree.body[i])
            dups = []
            for n in sorted(bound):
                new, dup = names.claim(module, n, rename_ok=True)
                dups.append(dup)
                if new != n:
                    result.renamed.append({"module": module, "from": n, "to": new})
            if bound and all(dups):
                skip.setdefault(module, set()).add(i)

    helper_imports: list[str] = []
    helper_code: list[str] = []
    for module in helpers:
        mref = mods.get(module)
        rewrite, extra = _rewriter(mref, names, closure, mods)
        for b in mref.imports:
            if b.module_level and b.imported.kind == "extern" and b.assignment.name in closure.externs.get(module, set()):
                if id(b.alias) in skip.get(module, set()):
                    continue
                new = names.final.get((module, b.assignment.name), b.assignment.name)
                stmt = cst.parse_statement(b.imported.statement)
                if new != b.assignment.name:
                    imp = stmt.body[0]
                    alias = imp.names[0].with_changes(asname=cst.AsName(name=cst.Name(new)))
                    stmt = stmt.with_changes(body=[imp.with_changes(names=[alias])])
                helper_imports.append(code_of(stmt).strip())
        kept_code = []
        for i in sorted(closure.kept.get(module, ())):
            if i in skip.get(module, set()):
                continue
            out = _apply(mref.tree.body[i], rewrite, extra)
            if out is not None:
                kept_code.append(code_of(out))
        kept_names = sorted({n for i in closure.kept.get(module, ()) for n in defined_names(mref.tree.body[i])})
        result.kept[mref.rel] = set(kept_names)
        for stmt in mref.tree.body:  # what runs when the helper is imported is not part of the port: listed
            if not (is_import(stmt) or is_main_guard(stmt) or defined_names(stmt) or _is_docstring(stmt)):
                line = _original_line(mref, mref.positions[stmt].start.line)
                result.dropped_statements.append({"file": mref.rel, "line": line, "code": code_of(stmt).strip().splitlines()[0][:120]})
        if kept_code:
            helper_code.append(f"# ---- from {mref.rel} ----\n" + "\n".join(kept_code))
            result.inlined.append({"module": mref.rel, "names": kept_names, "via": sorted(closure.via.get(module, ()))})

    rewrite, extra = _rewriter(ref, names, closure, mods)
    body = []
    for i, stmt in enumerate(ref.tree.body):
        if is_import(stmt) or i in kept_entry:
            out = _apply(stmt, rewrite, extra)
            if out is not None:
                body.append(out)
    result.kept[ref.rel] = {n for i in kept_entry for n in defined_names(ref.tree.body[i])}
    tree = ref.tree.with_changes(body=body)
    if helper_code or helper_imports:
        from agent.porting.config_capture import insert_after_imports

        existing = {code_of(s).strip() for s in tree.body if is_import(s)}
        extra_imports = list(dict.fromkeys(i for i in helper_imports if i not in existing))
        block = ("\n".join(extra_imports) + "\n\n" if extra_imports else "") + "\n\n".join(helper_code) + "\n"
        tree = insert_after_imports(tree, block)
    result.code = tree.code
    return result
