import ast
import re
import sys

from agent.checks.registry import Rule, register, walk

# diffusers' hard requirements and the packages its models and pipelines may import directly.
ALLOWED = {
    "torch", "numpy", "PIL", "huggingface_hub", "safetensors", "requests", "regex", "filelock",
    "importlib_metadata", "packaging", "typing_extensions", "tqdm", "diffusers", "transformers",
    "accelerate", "peft", "httpx", "tokenizers", "sentencepiece",  # the last two come with transformers
}
COVERED_ELSEWHERE = {"einops"}  # M001


# Matched against "\n" + text: a literal first character lets the regex engine jump from line break
# to line break (a `^` under re.M is tried at every character); the same matches.
_TOP_IMPORT = re.compile(r"\n(?:import|from)\s+([A-Za-z_]\w*)")


def might_fire(source: str) -> bool:
    names = set(_TOP_IMPORT.findall("\n" + source))
    return any(n not in sys.stdlib_module_names and n not in ALLOWED and n not in COVERED_ELSEWHERE for n in names)


def _guarded(tree: ast.Module) -> set[int]:
    """Line numbers of imports under an if (availability check) or inside try/except."""
    lines = set()
    for node in walk(tree):
        if isinstance(node, (ast.If, ast.Try)):
            for inner in walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    lines.add(inner.lineno)
    return lines


def _package_guarded(ctx) -> bool:
    """The whole package is imported only behind an availability check in its __init__."""
    text = ctx.read_other(ctx.path.parent / "__init__.py")
    return text is not None and re.search(r"if\s+(?:not\s+)?\(?\s*is_\w+_available\(\)", text) is not None


_AVAILABLE = re.compile(r"is_\w+_available\(")


def _importers_guard(ctx) -> bool:
    """Every module of the same package that imports this one does so behind an availability check."""
    stem = ctx.path.stem
    pattern = re.compile(rf"^([ \t]*)from \.{re.escape(stem)} import", re.M)
    seen = False
    for sibling in sorted(ctx.path.parent.glob("*.py")):
        if sibling == ctx.path:
            continue
        text = ctx.read_other(sibling) or ""
        for m in pattern.finditer(text):
            seen = True
            indent = len(m.group(1))
            before = text[: m.start()].split("\n")
            guard = next((line for line in reversed(before) if line.strip() and len(line) - len(line.lstrip()) < indent), "")
            if not (indent and guard.lstrip().startswith("if ") and _AVAILABLE.search(guard)):
                return False
    return seen


def _is_test_file(ctx) -> bool:
    """Tests are not imported by users, so what they import does not reach them."""
    return ctx.path.name.startswith("test_") or ctx.path.stem.endswith("_test")


def _sibling_module(ctx, name: str) -> bool:
    """A module beside this file (a standalone port's own files), not a third-party package."""
    folder = ctx.path.parent
    return ctx.read_other(folder / f"{name}.py") is not None or ctx.read_other(folder / name / "__init__.py") is not None


def check(ctx):
    if _is_test_file(ctx) or _package_guarded(ctx) or _importers_guard(ctx):
        return
    guarded = _guarded(ctx.tree)
    for node in ctx.tree.body:
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [(node.module or "").split(".")[0]]
        else:
            continue
        for name in names:
            if name in sys.stdlib_module_names or name in ALLOWED or name in COVERED_ELSEWHERE or node.lineno in guarded:
                continue
            if _sibling_module(ctx, name):
                continue
            yield node, f"unguarded import of optional dependency {name!r}: import it behind an is_{name}_available() check"


RULE = register(Rule(
    id="M010",
    name="optional-import",
    scope="models",
    summary="Optional dependencies are imported behind an availability check.",
    what="A module-level import of a package that is not a diffusers requirement, outside an if/try guard.",
    why="Importing the module then fails for every user without that package, even those who never use the model.",
    bad="import xformers",
    good="if is_xformers_available():\n    import xformers",
    anchor="models.md#no-einops",
    check=check,
    prefilter=might_fire,
))
