import ast
import re
from pathlib import Path

from agent.checks import indexes
from agent.checks.astutil import string_items
from agent.checks.indexes import class_names
from agent.checks.registry import Rule, register
from agent.checks.tree import installed_root, overlaid, resolved

CLASS_FLAGS = ("_no_split_modules", "_repeated_blocks")
NAME_FLAGS = ("_skip_layerwise_casting_patterns", "_keep_in_fp32_modules")
_SELF_ATTR = re.compile(r"self\.(\w+)\s*(?::[^=\n]+)?=(?!=)")


def _own_attrs(ctx, cls: ast.ClassDef) -> set[str]:
    out = {
        t.attr for n in ctx.inside(cls, ast.Assign, ast.AnnAssign)
        for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
    }
    # setattr(self, f"{prefix}_time_embeddings", ...): the constant parts of the name
    for n in ctx.inside(cls, ast.Call):
        if getattr(n.func, "id", "") == "setattr" and len(n.args) >= 2:
            out |= {c.value for c in ast.walk(n.args[1]) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return out


def _class_source(ctx, root: Path, qualified: str) -> str:
    """Text of an imported diffusers class (its block in its module), read as a dependency."""
    parts = qualified.split(".")
    if parts[0] != "diffusers" or len(parts) < 3:
        return ""
    module = root.joinpath(*parts[1:-1])
    for candidate in (module.with_suffix(".py"), module / "__init__.py"):
        if candidate.is_file():
            if overlaid(candidate) is not None:  # a --fix candidate: never remembered
                return _class_block(ctx.read_other(candidate) or "", parts[-1])
            # the same few blocks (Attention, FeedForward) are asked for by most model files
            ctx.deps.add(str(resolved(candidate)))  # what read_other records
            return indexes._memo(("class-block", str(resolved(candidate)), parts[-1]),
                                 lambda c=candidate: _class_block(ctx.read_other(c) or "", parts[-1]))
    return ""


def _class_block(text: str, name: str) -> str:
    m = re.search(rf"^class {re.escape(name)}\b.*?(?=^\S)", text + "\n_", re.M | re.S)
    return m.group(0) if m else ""


def module_names(ctx, cls: ast.ClassDef, root: Path | None) -> set[str] | None:
    """Submodule attribute names of the model: its own, those of the classes it builds in this
    file (transitively), and those of the imported diffusers classes it builds; None when it
    builds blocks through an imported factory (`get_down_block`), whose names cannot be listed."""
    names, seen, stack = set(), set(), [cls]
    while stack:
        c = stack.pop()
        if c.name in seen:
            continue
        seen.add(c.name)
        for x in ctx.classes.lineage(c):
            names |= _own_attrs(ctx, x)
        for call in ctx.inside(c, ast.Call):
            f = call.func
            built = f.id if isinstance(f, ast.Name) else (f.attr if isinstance(f, ast.Attribute) and f.attr in ("ModuleDict", "add_module", "register_module") else "")
            if built in ("ModuleDict", "add_module", "register_module") or getattr(f, "attr", "") in ("add_module", "register_module"):
                return None  # modules registered under names computed at run time
            if built in ctx.classes.by_name:
                stack.append(ctx.classes.by_name[built])
            elif re.match(r"get_\w*block", built) and built in ctx.names.table:
                return None
            elif built and root is not None and built in ctx.names.table:
                names |= set(_SELF_ATTR.findall(_class_source(ctx, root, ctx.names.qualify(f))))
    return names


def check(ctx):
    root = ctx.root or installed_root()
    for cls in ctx.classes.all:
        if ctx.classes.inherits(cls, "PreTrainedModel"):
            continue  # transformers-style models name classes of another package
        attrs = None
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
                if attrs is None:
                    attrs = module_names(ctx, cls, root) or {""}
                if attrs != {""} and not any(pattern.search(a) for a in attrs):
                    yield item, f"{flag} entry {name!r} matches no submodule name of {cls.name}"


RULE = register(Rule(
    id="M008",
    name="flag-names-exist",
    scope="models",
    summary="Names in _no_split_modules / _repeated_blocks / _skip_layerwise_casting_patterns / _keep_in_fp32_modules must exist.",
    what="A string in _no_split_modules or _repeated_blocks that names no class of the file, its imports or diffusers; a _skip_layerwise_casting_patterns or _keep_in_fp32_modules entry that matches no submodule name of the model (its own, the blocks it builds in the file, the diffusers blocks it imports).",
    why="device_map placement, regional compilation and layerwise casting look these names up; a stale name silently disables the feature or splits a block across devices.",
    bad='_no_split_modules = ["TransformerBlock"]  # the class is called MyTransformerBlock',
    good='_no_split_modules = ["MyTransformerBlock"]',
    anchor="models.md#capability-flags",
    check=check,
    triggers=CLASS_FLAGS + NAME_FLAGS,
))
