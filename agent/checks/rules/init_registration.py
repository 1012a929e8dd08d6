import ast
from pathlib import Path

from agent.checks.registry import Rule, register
from agent.checks.tree import dummy_file, dummy_names, key_covers, read_init, relative_module, resolved

BASES = ("ModelMixin", "DiffusionPipeline")


def public_classes(ctx) -> list[ast.ClassDef]:
    """Module-level public classes that are models or pipelines (not mixins, not private)."""
    out = []
    for cls in ctx.tree.body:
        if not isinstance(cls, ast.ClassDef) or cls.name.startswith("_") or cls.name.endswith("Mixin"):
            continue
        if ctx.classes.inherits(cls, *BASES):
            out.append(cls)
    return out


def layers(path: Path, root: Path) -> list[Path]:
    """The package folders from the file's own up to the diffusers root."""
    out, d = [], resolved(path).parent
    while True:
        out.append(d)
        if d == root:
            return out
        d = d.parent


def _where(ctx, name: str, path: Path, folder: Path):
    """(status per half, problems) of `name` in the __init__ of `folder`."""
    init = read_init(ctx, folder / "__init__.py")
    if init is None:
        return None, []
    module = relative_module(path, folder)
    found, problems = {}, []
    if init.lazy:
        keys = [k for _b, k, _l in init.structure.get(name, [])]
        found["_import_structure"] = any(key_covers(k, module) for k in keys)
        if keys and not found["_import_structure"]:
            problems.append(f"is listed under _import_structure[{keys[0]!r}], which is not its module {module!r}")
        found["TYPE_CHECKING imports"] = any(key_covers(m, module) for _b, m, _l in init.typed.get(name, []))
    else:
        found["imports"] = key_covers(init.plain.get(name, "\0"), module)
    return found, problems


def check(ctx):
    if ctx.root is None or ctx.path.name == "__init__.py":
        return
    rel = resolved(ctx.path).relative_to(ctx.root).parts
    if rel[0] not in ("models", "pipelines") or len(rel) < 2:
        return
    all_folders = layers(ctx.path, ctx.root)
    for cls in public_classes(ctx):
        # a model that is a component of the pipelines in its folder is exported by that folder
        folders = all_folders[:1] if rel[0] == "pipelines" and not ctx.classes.is_pipeline(cls) else all_folders
        status = {}
        problems: list[str] = []
        for folder in folders:
            found, issues = _where(ctx, cls.name, ctx.path, folder)
            if found is not None:
                status[folder] = found
                problems += issues
        anywhere = any(any(f.values()) for f in status.values())
        if not anywhere:
            if not _expected_public(ctx, cls):
                continue
        missing = [
            f"{half} of {folder.relative_to(ctx.root.parent)}/__init__.py"
            for folder, found in status.items() for half, ok in found.items() if not ok
        ]
        top = read_init(ctx, ctx.root / "__init__.py")
        if top is not None and anywhere and folders is all_folders:
            for dummy in sorted(top.dummy_of.get(cls.name, ())):
                names = dummy_names(ctx, dummy_file(ctx.root, ctx.root, dummy))
                if names is not None and cls.name not in names:
                    missing.append(f"the dummy objects of {dummy.lstrip('.')}")
        if missing or problems:
            text = "; ".join([*(f"it {p}" for p in problems), *([f"missing from {', '.join(missing)}"] if missing else [])])
            yield cls, f"{cls.name}: {text} (`from diffusers import {cls.name}` fails for some users)"


def _expected_public(ctx, cls: ast.ClassDef) -> bool:
    """A class registered nowhere is reported when it is what the file exists for: a pipeline, or
    the top-level model of a file under models/ (not a block another class of the file builds)."""
    if ctx.classes.is_pipeline(cls):
        return ctx.classes.inherits(cls, "DiffusionPipeline")
    rel = resolved(ctx.path).relative_to(ctx.root).parts
    if rel[0] != "models":
        return False
    built = {n.func.id for n in ctx.of_type(ast.Call) if isinstance(n.func, ast.Name)}
    return cls.name not in built


RULE = register(Rule(
    id="R001",
    name="init-registration",
    scope="repository",
    summary="Every public model and pipeline is registered in every __init__ on its path, in both halves, with its dummy object.",
    what="A public ModelMixin or DiffusionPipeline subclass under models/ or pipelines/ that is missing from an `__init__` between its file and the package root (the lazy `_import_structure` half, the `TYPE_CHECKING` half, or the plain imports of a non-lazy subpackage), is listed under the wrong module key, or has no dummy object for its optional backend.",
    why="`from diffusers import NewModel` resolves through every layer; type checkers and DIFFUSERS_SLOW_IMPORT use the TYPE_CHECKING half; users without the backend get the dummy. Missing one breaks imports for some users only.",
    bad='_import_structure["models"].extend([...])  # NewModel not listed',
    good='_import_structure["models"].extend([..., "NewModel"])\n...\nif TYPE_CHECKING or DIFFUSERS_SLOW_IMPORT:\n    from .models import NewModel',
    anchor="models.md#registration",
    check=check,
    fixable=True,
    triggers=BASES,
))
