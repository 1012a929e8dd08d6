import re
from functools import cache
from pathlib import Path

from agent.checks.astutil import (
    base_names,
    class_attr,
    classes,
    module_level_names,
    self_attributes_assigned,
    string_items,
)
from agent.checks.registry import Rule, register


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


def check(ctx):
    known = module_level_names(ctx.tree) | diffusers_class_names()
    attributes = self_attributes_assigned(ctx.tree)
    for cls in classes(ctx.tree):
        if "ModelMixin" not in base_names(cls):
            continue  # transformers-style models name classes of another package
        for flag in ("_no_split_modules", "_repeated_blocks"):
            for item in string_items(class_attr(cls, flag)):
                if item.value not in known:
                    yield item, f"{cls.name}.{flag} names {item.value!r}, which is not a class in or imported into this file"
        for item in string_items(class_attr(cls, "_skip_layerwise_casting_patterns")):
            try:
                pattern = re.compile(item.value)
            except re.error:
                yield item, f"{cls.name}._skip_layerwise_casting_patterns entry {item.value!r} is not a valid regular expression"
                continue
            if not any(pattern.search(name) for name in attributes):
                yield item, f"{cls.name}._skip_layerwise_casting_patterns entry {item.value!r} matches no module name in this file"


RULE = register(Rule(
    id="M008",
    name="flag-names-exist",
    scope="models",
    summary="Names in _no_split_modules / _repeated_blocks / _skip_layerwise_casting_patterns must exist.",
    what="A string in _no_split_modules or _repeated_blocks that names no class defined or imported in the file, or a _skip_layerwise_casting_patterns entry that matches no submodule name.",
    why="device_map placement, regional compilation and layerwise casting look these names up; a stale name silently disables the feature or splits a block across devices.",
    bad='_no_split_modules = ["TransformerBlock"]  # the class is called MyTransformerBlock',
    good='_no_split_modules = ["MyTransformerBlock"]',
    anchor="models.md#capability-flags",
    check=check,
    prefilter=lambda s: "ModelMixin" in s and any(t in s for t in ("_no_split_modules", "_repeated_blocks", "_skip_layerwise_casting_patterns")),
))
