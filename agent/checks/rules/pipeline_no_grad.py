import ast
import re

from agent.checks.astutil import decorator_names
from agent.checks.registry import Rule, register

_CALL = re.compile(r"^\s*def __call__\(", re.M)
_DECORATED = re.compile(r"@torch\.(?:no_grad|inference_mode)\(\)\s*\n(?:\s*@[^\n]*\n)*\s*def __call__\(")


def might_fire(source: str) -> bool:
    """Only files with a Pipeline class and a __call__ not already under no_grad."""
    return "Pipeline" in source and len(_CALL.findall(source)) > len(_DECORATED.findall(source))


def is_pipeline_call(ctx) -> bool:
    return ctx.class_name.endswith("Pipeline") or any(b.endswith("Pipeline") for b in ctx.class_bases)


def check(ctx):
    if not is_pipeline_call(ctx) or ctx.class_name.startswith(("Onnx", "Flax")) or "Modular" in ctx.class_name:
        return  # ONNX/Flax build no torch graph; modular pipelines' blocks carry no_grad themselves
    call = ctx.tree.body[0]
    if isinstance(call, ast.FunctionDef) and not decorator_names(call) & {"torch.no_grad", "no_grad", "torch.inference_mode"}:
        yield call, f"{ctx.class_name}.__call__ is not decorated with @torch.no_grad(): inference builds autograd graphs"


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
    kind="call",
    prefilter=might_fire,
))
