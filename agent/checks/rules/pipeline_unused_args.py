import ast

from agent.checks.astutil import names_used
from agent.checks.registry import Rule, register
from agent.checks.rules.pipeline_no_grad import is_pipeline_call


def check(ctx):
    if not is_pipeline_call(ctx):
        return
    call = ctx.tree.body[0]
    if not isinstance(call, ast.FunctionDef):
        return
    used = set().union(*(names_used(stmt) for stmt in call.body)) if call.body else set()
    if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("locals", "vars") for n in ast.walk(call)):
        return
    for arg in [*call.args.args[1:], *call.args.kwonlyargs]:
        if arg.arg not in used and not arg.arg.startswith("_"):
            yield arg, f"{ctx.class_name}.__call__ accepts {arg.arg!r} but never uses it"


RULE = register(Rule(
    id="P002",
    name="pipeline-unused-argument",
    scope="pipelines",
    summary="Public __call__ arguments are honoured, not accepted and ignored.",
    what="A parameter of a pipeline's __call__ that its body never reads.",
    why="Users pass it and believe it took effect; the pipeline silently does something else.",
    bad="def __call__(self, prompt, guidance_scale=5.0):\n    ...  # guidance_scale never read",
    good="def __call__(self, prompt, guidance_scale=5.0):\n    ...\n    noise_pred = uncond + guidance_scale * (cond - uncond)",
    anchor="pipelines.md#arguments",
    check=check,
    kind="call",
    triggers=("def __call__",),
))
