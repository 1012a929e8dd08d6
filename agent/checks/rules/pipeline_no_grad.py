import re

from agent.checks.astutil import classes, decorator_names, is_pipeline, methods
from agent.checks.registry import Rule, register

_CALL = re.compile(r"^\s*def __call__\(", re.M)
_DECORATED = re.compile(r"@torch\.(?:no_grad|inference_mode)\(\)\s*\n(?:\s*@[^\n]*\n)*\s*def __call__\(")


def might_fire(source: str) -> bool:
    """Only files with a Pipeline class and a __call__ not already under no_grad."""
    return "Pipeline" in source and len(_CALL.findall(source)) > len(_DECORATED.findall(source))


def check(ctx):
    for cls in classes(ctx.tree):
        if not is_pipeline(cls):
            continue
        call = methods(cls).get("__call__")
        if call is not None and not decorator_names(call) & {"torch.no_grad", "no_grad", "torch.inference_mode"}:
            yield call, f"{cls.name}.__call__ is not decorated with @torch.no_grad(): inference builds autograd graphs"


RULE = register(Rule(
    id="P001",
    name="pipeline-no-grad",
    scope="pipelines",
    summary="Pipeline __call__ runs under @torch.no_grad().",
    what="A pipeline class whose __call__ has no @torch.no_grad() decorator.",
    why="Without it every denoising step keeps activations for backward: memory grows with the number of steps.",
    bad="def __call__(self, prompt, ...):",
    good="@torch.no_grad()\ndef __call__(self, prompt, ...):",
    anchor="pipelines.md#no-grad",
    check=check,
    fixable=True,
    prefilter=might_fire,
))
