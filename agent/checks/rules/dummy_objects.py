import ast

from agent.checks.registry import Rule, register
from agent.checks.tree import dummy_file, dummy_names, parse_init, read_init


def _top_level(ctx) -> bool:
    return ctx.root is not None and ctx.path.resolve() == (ctx.root / "__init__.py").resolve()


def check(ctx):
    if ctx.root is None:
        return
    if _top_level(ctx):
        init = parse_init(ctx.path, ctx.source)
        by_backend = init.backends(init.typed)
        for backend, module in sorted(init.dummies.items()):
            names = dummy_names(ctx, dummy_file(ctx.root, ctx.root, module))
            for name in sorted(set(by_backend.get(backend, []))):
                if names is not None and name not in names:
                    line = next(line for bk, _m, line in init.typed[name] if bk == backend)
                    yield line, f"{name} ({backend}) has no dummy object in {module.lstrip('.')}: users without {backend.replace('_and_', ' and ')} get an ImportError instead of a helpful message"
        return
    if ctx.path.parent.name == "utils" and ctx.path.name.startswith("dummy_") and ctx.path.name.endswith("_objects.py"):
        top = read_init(ctx, ctx.root / "__init__.py")
        if top is None:
            return
        module = next((m for m in top.dummies.values() if m.lstrip(".").split(".")[-1] == ctx.path.stem), None)
        if module is None:
            return
        backend = next(b for b, m in top.dummies.items() if m == module)
        exported = set(top.backends(top.typed).get(backend, []))
        for node in ctx.tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name not in exported:
                yield node, f"dummy {node.name} is not exported for {backend} by diffusers/__init__.py: a stale dummy (make fix-copies regenerates this file)"


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
