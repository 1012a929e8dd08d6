import ast
import re
from functools import cache
from pathlib import Path

from agent.checks.registry import Rule, register

_PUBLIC_CLASS = re.compile(r"^class\s+([A-Z]\w*)\s*\(([^)]*)\)\s*:", re.M)
BASES = ("ModelMixin", "DiffusionPipeline")


def package_root(path: Path) -> Path | None:
    """The `diffusers` package folder that holds `path`."""
    for parent in path.resolve().parents:
        if parent.name == "diffusers" and (parent / "__init__.py").is_file():
            return parent
    return None


@cache
def exported(init_file: Path, mtime: float) -> tuple[frozenset[str], frozenset[str]]:
    """(names in the lazy _import_structure, names imported under TYPE_CHECKING) of an __init__."""
    tree = ast.parse(init_file.read_text())
    lazy, typed = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.Expr)) and "_import_structure" in ast.unparse(node)[:200]:
            lazy |= {c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom):
                    typed |= {a.asname or a.name for a in inner.names}
    return frozenset(lazy), frozenset(typed)


def check(ctx):
    root = package_root(ctx.path)
    if root is None:
        return
    rel = ctx.path.resolve().relative_to(root).parts
    if rel[0] not in ("models", "pipelines") or "deprecated" in rel:
        return
    # the nearest package __init__ on the way up that has the lazy _import_structure
    init = root / "__init__.py"
    for parent in ctx.path.resolve().parents:
        candidate = parent / "__init__.py"
        if candidate.is_file() and "_import_structure" in candidate.read_text():
            init = candidate
            break
        if parent == root:
            break
    lazy, typed = exported(init, init.stat().st_mtime)
    for match in _PUBLIC_CLASS.finditer(ctx.source):
        name, bases = match.group(1), match.group(2)
        if not any(b in bases for b in BASES) or name.endswith("Mixin"):
            continue  # abstract bases are not exported
        line = ctx.line_at(match.start())
        missing = [half for half, names in (("_import_structure", lazy), ("TYPE_CHECKING imports", typed)) if name not in names]
        if missing:
            yield line, f"{name} is missing from {' and '.join(missing)} of {init.parent.relative_to(root.parent)}/__init__.py"


RULE = register(Rule(
    id="R001",
    name="init-registration",
    scope="repository",
    summary="Every new public model and pipeline is in both halves of the package __init__.",
    what="A public ModelMixin or DiffusionPipeline subclass under models/ or pipelines/ that is absent from diffusers/__init__.py's _import_structure or its TYPE_CHECKING imports.",
    why="`from diffusers import NewModel` resolves through _import_structure; type checkers and DIFFUSERS_SLOW_IMPORT use the TYPE_CHECKING half. Missing either breaks imports for some users only.",
    bad='_import_structure["models"].extend([...])  # NewModel not listed',
    good='_import_structure["models"].extend([..., "NewModel"])\n...\nif TYPE_CHECKING or DIFFUSERS_SLOW_IMPORT:\n    from .models import NewModel',
    anchor="models.md#registration",
    check=check,
    fixable=True,
    kind="text",
    prefilter=lambda s: any(b in s for b in BASES),
))
