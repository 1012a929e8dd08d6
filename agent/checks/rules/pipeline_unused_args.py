from agent.checks.flow import Scope, params, uses
from agent.checks.registry import Rule, register


def check(ctx):
    for cls, call in ctx.classes.pipeline_calls():
        args = [a for a in params(call)[1:] if not a.arg.startswith("_")]
        verdicts = uses(call, [a.arg for a in args], Scope.of(ctx, cls))
        for arg in args:
            if not verdicts[arg.arg].used:
                yield arg, f"{cls.name}.__call__ accepts {arg.arg!r} but it is {verdicts[arg.arg].why}"


RULE = register(Rule(
    id="P002",
    name="pipeline-unused-argument",
    scope="pipelines",
    summary="Public __call__ arguments are honoured, not accepted and ignored.",
    what="A parameter of a pipeline's __call__ whose value never reaches a call or a returned value: never read, only validated, overwritten before use, stored on self and never read, or passed only to a helper that ignores it.",
    why="Users pass it and believe it took effect; the pipeline silently does something else.",
    bad="def __call__(self, prompt, guidance_scale=5.0):\n    self.check_inputs(prompt, guidance_scale)\n    ...  # guidance_scale never reaches the computation",
    good="def __call__(self, prompt, guidance_scale=5.0):\n    ...\n    noise_pred = uncond + guidance_scale * (cond - uncond)",
    anchor="pipelines.md#arguments",
    check=check,
    triggers=("def __call__",),
))
