import ast

from agent.checks.astutil import dotted
from agent.checks.pipelines import is_combined, torch_pipeline_calls
from agent.checks.registry import Rule, register, walk


def _frees(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and dotted(n.func) == "self.maybe_free_model_hooks" for n in walk(node))


def _unfreed_returns(block: list[ast.stmt], freed: bool):
    """Returns reached before maybe_free_model_hooks() on their path."""
    for stmt in block:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(stmt, ast.Return):
            if not freed and not (stmt.value is not None and _frees(stmt.value)):
                yield stmt
            continue
        if isinstance(stmt, ast.Try) and any(_frees(s) for s in stmt.finalbody):
            continue  # released on every way out of the try
        if isinstance(stmt, (ast.Expr, ast.Assign)) and _frees(stmt):
            freed = True
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _unfreed_returns(getattr(stmt, field, []) or [], freed)
        for handler in getattr(stmt, "handlers", []) or []:
            yield from _unfreed_returns(handler.body, freed)
        for case in getattr(stmt, "cases", []) or []:
            yield from _unfreed_returns(case.body, freed)


def check(ctx):
    for cls, call in torch_pipeline_calls(ctx):
        if is_combined(ctx, cls) or not ctx.classes.inherits(cls, "DiffusionPipeline"):
            continue
        if ctx.classes.attr(cls, "model_cpu_offload_seq") is None:
            continue  # no offload sequence: enable_model_cpu_offload() refuses it, there are no hooks
        for ret in _unfreed_returns(call.body, False):
            yield ret, f"{cls.name}.__call__ returns before self.maybe_free_model_hooks(): offloaded models stay on the device"


RULE = register(Rule(
    id="P005",
    name="pipeline-free-hooks",
    scope="pipelines",
    summary="maybe_free_model_hooks() runs before every return of __call__.",
    what="A return statement in a pipeline's __call__ that is not preceded by self.maybe_free_model_hooks() on its path.",
    why="With model CPU offload, the last model stays on the accelerator until the hooks are released; an early return (often the output_type='latent' or return_dict=False one) leaks device memory.",
    bad='if output_type == "latent":\n    return latents\n...\nself.maybe_free_model_hooks()\nreturn Output(images=image)',
    good='if output_type == "latent":\n    image = latents\nelse:\n    image = decode(latents)\nself.maybe_free_model_hooks()\nreturn Output(images=image)',
    anchor="pipelines.md#offload-hooks",
    check=check,
    triggers=("def __call__",),
))
