import re
from functools import cache
from pathlib import Path

from agent.checks.astutil import imports_sibling_blocks
from agent.checks.registry import Rule, register

_FLAG = re.compile(r"^\s*(_no_split_modules|_repeated_blocks|_skip_layerwise_casting_patterns)\s*=\s*[\[(]([^\])]*)[\])]", re.M)
_ITEM = re.compile(r"[\"']([^\"']+)[\"']")
_SELF_ATTR = re.compile(r"self\.(\w+)\s*=")


@cache
def diffusers_class_names() -> frozenset[str]:
    """Classes defined anywhere in the installed diffusers (blocks are shared between models)."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("diffusers")
        root = Path(spec.submodule_search_locations[0]) if spec else None
    except (ImportError, ValueError):
        root = None
    if root is None:
        return frozenset()
    pattern = re.compile(r"^class (\w+)", re.M)
    return frozenset(name for f in root.rglob("*.py") for name in pattern.findall(f.read_text(errors="replace")))


def _mentioned(name: str, source: str) -> bool:
    """The name appears as code (a class statement, an import, a use), not only as a string."""
    return re.search(rf"(?<![\"'\w]){re.escape(name)}(?![\"'\w])", source) is not None


def check(ctx):
    attributes = set(_SELF_ATTR.findall(ctx.source))
    for match in _FLAG.finditer(ctx.source):
        flag, items = match.group(1), match.group(2)
        line = ctx.line_at(match.start())
        for item in _ITEM.findall(items):
            if flag == "_skip_layerwise_casting_patterns":
                if imports_sibling_blocks(ctx.source):
                    continue  # submodule names come from blocks defined in other files
                try:
                    pattern = re.compile(item)
                except re.error:
                    yield line, f"_skip_layerwise_casting_patterns entry {item!r} is not a valid regular expression"
                    continue
                if not any(pattern.search(a) for a in attributes):
                    yield line, f"_skip_layerwise_casting_patterns entry {item!r} matches no module name in this file"
            elif not _mentioned(item, ctx.source) and item not in diffusers_class_names():
                yield line, f"{flag} names {item!r}, which is not a class in, or imported into, this file or diffusers"


RULE = register(Rule(
    id="M008",
    name="flag-names-exist",
    scope="models",
    summary="Names in _no_split_modules / _repeated_blocks / _skip_layerwise_casting_patterns must exist.",
    what="A string in _no_split_modules or _repeated_blocks that names no class of the file or of diffusers, or a _skip_layerwise_casting_patterns entry that matches no submodule name.",
    why="device_map placement, regional compilation and layerwise casting look these names up; a stale name silently disables the feature or splits a block across devices.",
    bad='_no_split_modules = ["TransformerBlock"]  # the class is called MyTransformerBlock',
    good='_no_split_modules = ["MyTransformerBlock"]',
    anchor="models.md#capability-flags",
    check=check,
    kind="text",
    # transformers-style models (no ModelMixin) name classes of another package
    prefilter=lambda s: "ModelMixin" in s and _FLAG.search(s) is not None,
))
