import ast
import re

from agent.checks.astutil import string_items
from agent.checks.indexes import attribute_names, class_names
from agent.checks.registry import Rule, register
from agent.checks.tree import installed_root

CLASS_FLAGS = ("_no_split_modules", "_repeated_blocks")
NAME_FLAGS = ("_skip_layerwise_casting_patterns", "_keep_in_fp32_modules")


def _own_attrs(tree: ast.AST) -> set[str]:
    return {
        t.attr for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign))
        for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
    }


def check(ctx):
    root = ctx.root or installed_root()
    local_attrs = None
    for cls in ctx.classes.all:
        if ctx.classes.inherits(cls, "PreTrainedModel"):
            continue  # transformers-style models name classes of another package
        for node in cls.body:
            if not isinstance(node, (ast.Assign, ast.AnnAssign)):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            flag = next((t.id for t in targets if isinstance(t, ast.Name) and t.id in CLASS_FLAGS + NAME_FLAGS), None)
            if flag is None or node.value is None:
                continue
            for item in string_items(node.value):
                name = item.value
                if flag in CLASS_FLAGS:
                    if name in ctx.classes.by_name or name in ctx.names.table:
                        continue
                    if root is not None and name in class_names(ctx, root):
                        continue
                    yield item, f"{flag} names {name!r}, which is not a class in, or imported into, this file or diffusers"
                    continue
                try:
                    pattern = re.compile(name)
                except re.error:
                    yield item, f"{flag} entry {name!r} is not a valid regular expression"
                    continue
                if local_attrs is None:
                    local_attrs = _own_attrs(ctx.tree)
                if any(pattern.search(a) for a in local_attrs):
                    continue
                if root is not None and any(pattern.search(a) for a in attribute_names(ctx, root)):
                    continue
                yield item, f"{flag} entry {name!r} matches no module name of this model or of any diffusers block"


RULE = register(Rule(
    id="M008",
    name="flag-names-exist",
    scope="models",
    summary="Names in _no_split_modules / _repeated_blocks / _skip_layerwise_casting_patterns / _keep_in_fp32_modules must exist.",
    what="A string in _no_split_modules or _repeated_blocks that names no class of the file, its imports or diffusers; a _skip_layerwise_casting_patterns or _keep_in_fp32_modules entry that matches no submodule name.",
    why="device_map placement, regional compilation and layerwise casting look these names up; a stale name silently disables the feature or splits a block across devices.",
    bad='_no_split_modules = ["TransformerBlock"]  # the class is called MyTransformerBlock',
    good='_no_split_modules = ["MyTransformerBlock"]',
    anchor="models.md#capability-flags",
    check=check,
    triggers=CLASS_FLAGS + NAME_FLAGS,
))
