import ast

from agent.checks.registry import Rule, register
from agent.checks.tree import dummy_file, dummy_names, parse_init, read_init, resolved


def _top_level(ctx) -> bool:
    return ctx.root is not None and resolved(ctx.path) == resolved(ctx.root / "__init__.py")


def check(ctx):
    if ctx.root is None:
        return
    if _top_level(ctx):
        init = parse_init(ctx.path, ctx.source)
        for name, modules in sorted(init.dummy_of.items()):
            for module in sorted(modules):
                names = dummy_names(ctx, dummy_file(ctx.root, ctx.root, module))
                if names is not None and name not in names:
                    backend, _m, line = init.typed[name][0]
                    yield line, f"{name} ({backend}) has no dummy object in {module.lstrip('.')}: users without {backend.replace('_and_', ' and ')} get an ImportError instead of a helpful message"
        return
    if ctx.path.parent.name == "utils" and ctx.path.name.startswith("dummy_") and ctx.path.name.endswith("_objects.py"):
        top = read_init(ctx, ctx.root / "__init__.py")
        if top is None:
            return
        exported = {n for n, ms in top.dummy_of.items() if any(m.lstrip(".").split(".")[-1] == ctx.path.stem for m in ms)}
        if not exported:
            return
        for node in ctx.tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name not in exported:
                yield node, f"dummy {node.name} is not exported behind this backend by diffusers/__init__.py: a stale dummy (make fix-copies regenerates this file)"


RULE = register(Rule(
    id="R005",
    name="dummy-objects",
    scope="repository",
    summary="Every object exported behind an optional backend has a dummy, and no dummy is stale (check_dummies.py).",
    what="A name the top-level `__init__` imports for an optional backend (in its TYPE_CHECKING half) that the backend's `utils/dummy_*_objects.py` does not define, or a dummy class that is no longer exported.",
    why="Without the backend installed, `from diffusers import X` must give a dummy that explains what to install; a missing dummy is an ImportError, a stale one advertises a class that does not exist.",
    bad="# diffusers/__init__.py imports NewModel for torch, utils/dummy_pt_objects.py has no NewModel",
    good="class NewModel(metaclass=DummyObject):\n    _backends = [\"torch\"]\n    ...",
    anchor="models.md#registration",
    check=check,
    on_deprecated=True,
    prefilter=lambda s: "DummyObject" in s or "_import_structure" in s,
))
