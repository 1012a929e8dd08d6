"""Small ast helpers the rules share."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator


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
    yield from (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef))


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
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


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
        for node in ast.walk(tree)
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
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def calls_in(node: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call)]
