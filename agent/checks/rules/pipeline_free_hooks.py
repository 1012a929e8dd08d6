import ast

from agent.checks.astutil import dotted
from agent.checks.registry import Rule, register
from agent.checks.rules.pipeline_no_grad import is_pipeline_call


def _frees(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and dotted(stmt.value.func) == "self.maybe_free_model_hooks"


def _unfreed_returns(block: list[ast.stmt], freed: bool):
    """Returns reached before maybe_free_model_hooks() on their path (straight-line order)."""
    for stmt in block:
        if _frees(stmt):
            freed = True
        elif isinstance(stmt, ast.Return):
            if not freed:
                yield stmt
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        else:
            for field in ("body", "orelse", "finalbody"):
                yield from _unfreed_returns(getattr(stmt, field, []) or [], freed)
            for handler in getattr(stmt, "handlers", []) or []:
                yield from _unfreed_returns(handler.body, freed)


def check(ctx):
    if not is_pipeline_call(ctx) or "DiffusionPipeline" not in ctx.source:
        return
    if ctx.class_name.startswith(("Onnx", "Flax")) or "Modular" in ctx.class_name or "Combined" in ctx.class_name:
        return  # no torch offload hooks (ONNX/Flax), managed by the components manager, or freed by the sub-pipelines
    call = ctx.tree.body[0]
    if not isinstance(call, ast.FunctionDef):
        return
    for ret in _unfreed_returns(call.body, False):
        yield ret, f"{ctx.class_name}.__call__ returns before self.maybe_free_model_hooks(): offloaded models stay on the device"


RULE = register(Rule(
    id="P005",
    name="pipeline-free-hooks",
    scope="pipelines",
    summary="maybe_free_model_hooks() runs before every return of __call__.",
    what="A return statement in a pipeline's __call__ that is not preceded by self.maybe_free_model_hooks() on its path.",
    why="With model CPU offload, the last model stays on the accelerator until the hooks are released; an early return (often the output_type='latent' one) leaks device memory.",
    bad='if output_type == "latent":\n    return latents\n...\nself.maybe_free_model_hooks()\nreturn Output(images=image)',
    good='if output_type == "latent":\n    image = latents\nelse:\n    image = decode(latents)\nself.maybe_free_model_hooks()\nreturn Output(images=image)',
    anchor="pipelines.md#offload-hooks",
    check=check,
    kind="call",
    triggers=("def __call__",),
))
