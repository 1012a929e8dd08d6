"""Small ast helpers the rules share."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from agent.checks.registry import child_nodes, walk


def dotted(node: ast.AST) -> str:
    """`torch.nn.functional.gelu` for an Attribute chain, '' when it is not one."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def classes(tree: ast.Module) -> Iterator[ast.ClassDef]:
    yield from (n for n in walk(tree) if isinstance(n, ast.ClassDef))


def base_names(cls: ast.ClassDef) -> set[str]:
    return {dotted(b).split(".")[-1] for b in cls.bases if dotted(b)}


def methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def decorator_names(fn: ast.FunctionDef) -> set[str]:
    out = set()
    for d in fn.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        out.add(dotted(target))
    return out


def names_used(node: ast.AST) -> set[str]:
    return {n.id for n in walk(node) if isinstance(n, ast.Name)}


# Relative imports of building blocks, recognised by the names imported.
IMPORTED_BLOCKS = re.compile(
    r"^\s*from\s+\.+[\w.]*\s+import\s+\(?[^)]*?\b\w*(?:Encoder|Decoder|Block|Blocks|Layer|Transformer|Attention|Resnet)\w*\b",
    re.M,
)


def imports_sibling_blocks(source: str) -> bool:
    """The file builds on blocks from other diffusers modules (their code is not in this file)."""
    return IMPORTED_BLOCKS.search(source) is not None


def is_pipeline(cls: ast.ClassDef) -> bool:
    return cls.name.endswith("Pipeline") or any(b.endswith("Pipeline") for b in base_names(cls))


def class_attr(cls: ast.ClassDef, name: str) -> ast.expr | None:
    """The value assigned to a class attribute in the class body, if any."""
    for node in cls.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node.value
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return node.value
    return None


def string_items(node: ast.expr | None) -> list[ast.Constant]:
    """The string constants of a list/tuple/set literal (or a single string)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [e for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def self_attributes_assigned(tree: ast.AST) -> set[str]:
    return {
        t.attr
        for node in walk(tree)
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
    }


def module_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    # names imported inside `if TYPE_CHECKING:` / try blocks count too
    for node in walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def calls_in(node: ast.AST) -> list[ast.Call]:
    return [n for n in walk(node) if isinstance(n, ast.Call)]


def functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def enclosing(tree: ast.Module) -> dict[int, tuple[ast.ClassDef | None, ast.FunctionDef | None]]:
    """id(node) -> (innermost class, innermost function) around it."""
    out: dict[int, tuple] = {}

    def visit(node, cls, fn):
        for child in ast.iter_child_nodes(node):
            c, f = cls, fn
            if isinstance(child, ast.ClassDef):
                c, f = child, None
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                f = child
            out[id(child)] = (cls, fn)
            visit(child, c, f)

    visit(tree, None, None)
    return out


def own_nodes(fn: ast.AST):
    """Nodes of a function body, not descending into nested functions or classes (nor the
    Load/Store context nodes)."""
    stack = child_nodes(fn)
    while stack:
        n = stack.pop()
        yield n
        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack += child_nodes(n)


def assignments(fn: ast.AST) -> list[tuple[list[str], ast.expr]]:
    """(target names, value) of the plain assignments in a function body, in source order."""
    out = []
    for n in own_nodes(fn):
        if isinstance(n, ast.Assign):
            names = [t.id for target in n.targets for t in walk(target) if isinstance(t, ast.Name)]
            out.append((names, n.value))
        elif isinstance(n, (ast.AnnAssign, ast.AugAssign)) and n.value is not None and isinstance(n.target, ast.Name):
            out.append(([n.target.id], n.value))
        elif isinstance(n, ast.NamedExpr):
            out.append(([n.target.id], n.value))
    return sorted(out, key=lambda a: (a[1].lineno, a[1].col_offset))


def derived(fn: ast.AST, seeds: set[str], start: ast.AST | None = None) -> set[str]:
    """Names whose value is computed (through assignments in `fn`) from `seeds` or from `start`."""
    names = set(seeds)
    assigned = []
    for targets, value in assignments(fn):
        nodes = list(walk(value))
        used = {n.id for n in nodes if isinstance(n, ast.Name)}
        assigned.append((targets, used, start is not None and any(n is start for n in nodes)))
    for _ in range(3):
        before = len(names)
        for targets, used, has_start in assigned:
            if has_start or used & names:
                names |= set(targets)
        if len(names) == before:
            break
    return names


def constant_int(node: ast.AST) -> int | None:
    """The value of an integer literal or a constant arithmetic expression (`2 ** 3`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp):
        left, right = constant_int(node.left), constant_int(node.right)
        if left is None or right is None:
            return None
        ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
               ast.Pow: lambda a, b: a ** b if b < 64 else None, ast.FloorDiv: lambda a, b: a // b if b else None,
               ast.LShift: lambda a, b: a << b if b < 64 else None}
        op = ops.get(type(node.op))
        return op(left, right) if op else None
    return None
