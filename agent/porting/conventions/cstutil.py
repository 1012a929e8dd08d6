"""libcst helpers the convention codemods share: finding the model class and its methods,
renaming a function's local variables by scope (so a same-named keyword, attribute or inner
function's variable is left alone), and small constructors."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import libcst as cst
import libcst.matchers as m
from libcst.metadata import GlobalScope, MetadataWrapper, Scope, ScopeProvider

DOCSTRING = m.SimpleStatementLine(body=[m.Expr(m.SimpleString() | m.ConcatenatedString())])


def code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def top_class(module: cst.Module, name: str) -> cst.ClassDef | None:
    return next((s for s in module.body if isinstance(s, cst.ClassDef) and s.name.value == name), None)


def method(cls: cst.ClassDef, name: str) -> cst.FunctionDef | None:
    return next((s for s in cls.body.body if isinstance(s, cst.FunctionDef) and s.name.value == name), None)




def docstring_index(body: Iterable[cst.BaseStatement]) -> int:
    """Where statements go to come first in a body: after its docstring, if any."""
    body = list(body)
    return 1 if body and m.matches(body[0], DOCSTRING) else 0


def docstring_text(body: Iterable[cst.BaseStatement]) -> str | None:
    body = list(body)
    if body and m.matches(body[0], DOCSTRING):
        value = body[0].body[0].value.evaluated_value  # type: ignore[attr-defined]
        return value if isinstance(value, str) else None
    return None


def statement(source: str) -> cst.BaseStatement:
    return cst.parse_statement(source)


def module_alias(module: cst.Module, name: str) -> str | None:
    """The name a module-level `import name` / `import name as x` binds, if any."""
    for stmt in module.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Import):
                    for alias in small.names:
                        if cst.helpers.get_full_name_for_node(alias.name) == name:
                            return alias.evaluated_alias or name
    return None


def module_names(module: cst.Module) -> set[str]:
    """Names bound at module level: imports, classes, functions, assignments."""
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    scopes = wrapper.resolve(ScopeProvider)
    glob = next((s for s in scopes.values() if isinstance(s, GlobalScope)), None)
    return {a.name for a in glob.assignments} if glob else set()


class _RenameNodes(cst.CSTTransformer):
    def __init__(self, nodes: dict[int, str]):
        self.nodes = nodes

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        new = self.nodes.get(id(original))
        return updated.with_changes(value=new) if new else updated


def _inside(scope: Scope, outer: Scope) -> bool:
    while True:
        if scope is outer:
            return True
        if scope.parent is None or scope.parent is scope:
            return False
        scope = scope.parent


def _function_scopes(module: cst.Module, function: cst.FunctionDef) -> tuple[Scope, list[Scope]]:
    """The function's scope and every scope nested in it (comprehensions, lambdas, inner defs)."""
    scopes = MetadataWrapper(module, unsafe_skip_copy=True).resolve(ScopeProvider)
    first = function.params.params[0] if function.params.params else function.body.body[0]
    fscope = scopes[first]
    return fscope, [s for s in set(scopes.values()) if s is not None and _inside(s, fscope)]


def names_in_function(module: cst.Module, function: cst.FunctionDef) -> set[str]:
    """Every name read or bound inside `function` (a node of `module`), nested scopes included."""
    _, inner = _function_scopes(module, function)
    return {n for s in inner for n in ({a.name for a in s.assignments} | {a.node.value for a in s.accesses if isinstance(a.node, cst.Name)})}


def rename_locals(
    module: cst.Module, function: cst.FunctionDef, renames: dict[str, str]
) -> tuple[cst.Module, dict[str, str], dict[str, str]]:
    """Rename variables of `function` (a node of `module`): its parameters and every name that
    resolves to them, in nested comprehensions and lambdas too. Returns (module, applied,
    refused: {old: why}). A rename is refused when the new name is already read or bound
    anywhere in the function (it would capture or be captured)."""
    fscope, _ = _function_scopes(module, function)
    taken = names_in_function(module, function)
    nodes: dict[int, str] = {}
    applied: dict[str, str] = {}
    refused: dict[str, str] = {}
    for old, new in renames.items():
        if new in taken or new in applied.values():
            refused[old] = f"`{new}` is already used inside {function.name.value}()"
            continue
        found = [a for a in fscope.assignments[old] if a.scope is fscope]
        if not found:
            refused[old] = f"no variable `{old}` in {function.name.value}()"
            continue
        for a in found:
            target = a.node.name if isinstance(a.node, cst.Param) else a.node
            if isinstance(target, cst.Name):
                nodes[id(target)] = new
            for ref in a.references:
                if isinstance(ref.node, cst.Name):
                    nodes[id(ref.node)] = new
        applied[old] = new
    if not nodes:
        return module, applied, refused
    return module.visit(_RenameNodes(nodes)), applied, refused


def map_class(module: cst.Module, name: str, fn: Callable[[cst.ClassDef], cst.ClassDef]) -> cst.Module:
    """`module` with its top-level class `name` replaced by `fn(class)`."""
    body = [fn(s) if isinstance(s, cst.ClassDef) and s.name.value == name else s for s in module.body]
    return module.with_changes(body=body)




def insert_statements(body: list[cst.BaseStatement], at: int, new: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
    return [*body[:at], *new, *body[at:]]




def set_class_attributes(cls: cst.ClassDef, attributes: dict[str, str]) -> cst.ClassDef:
    """Class attributes (name -> source of the value) placed after the docstring, before the
    methods, replacing existing assignments of the same names."""
    body = [s for s in cls.body.body if not any(
        m.matches(s, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(m.Name(n))])])) for n in attributes
    )]
    lines = [statement(f"{n} = {v}\n") for n, v in attributes.items()]
    at = docstring_index(body)
    while at < len(body) and isinstance(body[at], cst.SimpleStatementLine):
        at += 1  # after the class's own attributes
    if lines and at < len(body):
        body[at] = body[at].with_changes(leading_lines=[cst.EmptyLine()])
    return cls.with_changes(body=cls.body.with_changes(body=insert_statements(body, at, lines)))
