"""What the tamper rules (T001-T008) share: every place a file refers to a module or a name, each
resolved through imports, aliases, `getattr(mod, "name")`, `sys.modules[...]` and dynamic imports.

A port's model file only has to compute. Anything that could reach the tool that judges it,
inspect the caller, run other code, touch files, the network or the environment, or change torch
for everybody else can forge or disturb a parity verdict, so these rules refuse it statically and
their findings block verification (`Rule.blocks_pass`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

SCOPE_ANCHOR = "models.md#no-tampering"


def _matches(qualified: str, banned: tuple[str, ...]) -> str:
    for b in banned:
        if qualified == b or qualified.startswith(b + "."):
            return b
    return ""


def imported_modules(ctx) -> Iterator[tuple[ast.AST, str]]:
    """(node, module) for every import statement's modules, at any depth of the file."""
    for node in ctx.of_type(ast.Import, ast.ImportFrom):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node, a.name
        elif not node.level and node.module:
            yield node, node.module
            for a in node.names:
                yield node, f"{node.module}.{a.name}"


def references(ctx) -> Iterator[tuple[ast.AST, str]]:
    """(node, qualified name) for every name, attribute chain, getattr, sys.modules lookup and
    dynamic import the file resolves; only the outermost resolvable node of a chain is given."""
    inner: set[int] = set()
    for node in ctx.nodes:
        if id(node) in inner or not isinstance(node, (ast.Name, ast.Attribute, ast.Call, ast.Subscript)):
            continue
        q = ctx.names.qualify(node)
        if not q:
            continue
        # the parts of an attribute chain are not references of their own (a call's callee is)
        if not isinstance(node, ast.Call):
            for child in ast.walk(node):
                if child is not node and isinstance(child, (ast.Name, ast.Attribute)):
                    inner.add(id(child))
        yield node, q


def find(ctx, banned: tuple[str, ...]) -> Iterator[tuple[ast.AST, str]]:
    """Imports of, and references to, anything under `banned` (dotted prefixes)."""
    seen: set[int] = set()
    for node, module in imported_modules(ctx):
        hit = _matches(module, banned)
        if hit and id(node) not in seen:
            seen.add(id(node))
            yield node, module
    for node, q in references(ctx):
        hit = _matches(q, banned)
        if hit and not isinstance(getattr(node, "ctx", None), ast.Store):
            yield node, q


def import_time_statements(ctx) -> Iterator[ast.stmt]:
    """Statements that run when the module is imported: module level and class bodies, not
    function bodies."""
    stack = list(ctx.tree.body)
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield stmt  # its decorators and defaults run at import
            continue
        yield stmt
        if isinstance(stmt, ast.ClassDef):
            stack.extend(stmt.body)
            continue
        for field in ("body", "orelse", "finalbody"):
            stack.extend(getattr(stmt, field, []) or [])
        for h in getattr(stmt, "handlers", []) or []:
            stack.extend(h.body)


def import_time_calls(ctx) -> Iterator[ast.Call]:
    """Calls evaluated at import: in import-time statements (decorators and defaults included),
    not inside function bodies or lambdas."""
    for stmt in import_time_statements(ctx):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            roots = [*stmt.decorator_list, *stmt.args.defaults, *(d for d in stmt.args.kw_defaults if d is not None)]
        elif isinstance(stmt, ast.ClassDef):
            roots = [*stmt.decorator_list, *stmt.bases, *(k.value for k in stmt.keywords)]
        else:
            roots = [v for f, v in ast.iter_fields(stmt) if f not in ("body", "orelse", "finalbody", "handlers")]
            roots = [r for value in roots for r in (value if isinstance(value, list) else [value]) if isinstance(r, ast.AST)]
        for root in roots:
            stack = [root]
            while stack:
                n = stack.pop()
                if isinstance(n, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    continue
                if isinstance(n, ast.Call):
                    yield n
                stack.extend(ast.iter_child_nodes(n))
