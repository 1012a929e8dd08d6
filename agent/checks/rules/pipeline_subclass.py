import ast

from agent.checks.classes import ABSTRACT_PIPELINES
from agent.checks.registry import Rule, register, walk


def _deprecated_alias(cls: ast.ClassDef) -> bool:
    """A subclass that exists only to warn that a name is deprecated (its __init__ calls deprecate)."""
    methods = [n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return bool(methods) and all(m.name == "__init__" for m in methods) and any(
        isinstance(n, ast.Call) and (getattr(n.func, "id", None) or getattr(n.func, "attr", "")) in ("deprecate", "warn")
        for m in methods for n in walk(m)
    )


def check(ctx):
    for cls in ctx.classes.all:
        if _deprecated_alias(cls):
            continue
        for base in ctx.classes.base_names(cls):
            if base.endswith("ModularPipeline") or base in ABSTRACT_PIPELINES:
                continue  # modular pipelines are thin containers of blocks: subclassing is their design
            if base.endswith("Pipeline") and not base.endswith("MixinPipeline"):
                yield cls, f"{cls.name} subclasses the concrete pipeline {base}: a variant is its own DiffusionPipeline (share code with # Copied from)"


RULE = register(Rule(
    id="P007",
    name="pipeline-subclass",
    scope="pipelines",
    summary="No pipeline subclasses another concrete pipeline.",
    what="A class whose bases (resolved through import aliases) include a concrete pipeline: a name ending in Pipeline other than DiffusionPipeline and the modular bases. Deprecated aliases (a subclass whose only method warns) are not variants.",
    why="Changes to the parent silently change the variant; diffusers keeps each pipeline self-contained and shares code through # Copied from.",
    bad="class MyImg2ImgPipeline(MyPipeline):",
    good="class MyImg2ImgPipeline(DiffusionPipeline, FromSingleFileMixin):",
    anchor="pipelines.md#base-class",
    check=check,
    triggers=("Pipeline",),
))
