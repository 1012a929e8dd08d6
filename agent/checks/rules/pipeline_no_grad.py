import ast

from agent.checks.pipelines import decorator_qualnames, torch_pipeline_calls
from agent.checks.registry import Rule, register

NO_GRAD = {"torch.no_grad", "torch.inference_mode", "torch.autograd.grad_mode.no_grad", "torch.autograd.no_grad"}
NEEDS_GRAD = {"torch.enable_grad", "torch.autograd.grad", "torch.set_grad_enabled"}


def _needs_gradients(ctx, cls) -> bool:
    """Guidance by gradients (value-guided sampling, classifier guidance) needs autograd on."""
    for node in ctx.inside(cls, ast.Call):
        if ctx.names.qualify(node.func) in NEEDS_GRAD:
            return True
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("backward", "requires_grad_"):
            return True
    return False


def check(ctx):
    for cls, call in torch_pipeline_calls(ctx):
        if decorator_qualnames(ctx, call) & NO_GRAD or _needs_gradients(ctx, cls):
            continue
        yield call, f"{cls.name}.__call__ is not decorated with @torch.no_grad(): inference builds autograd graphs"


RULE = register(Rule(
    id="P001",
    name="pipeline-no-grad",
    scope="pipelines",
    summary="Pipeline __call__ runs under @torch.no_grad().",
    what="A pipeline class whose __call__ has no @torch.no_grad() (or inference_mode) decorator, unless the pipeline guides by gradients.",
    why="Without it every denoising step keeps activations for backward: memory grows with the number of steps.",
    bad="def __call__(self, prompt, ...):",
    good="@torch.no_grad()\ndef __call__(self, prompt, ...):",
    anchor="pipelines.md#no-grad",
    check=check,
    fixable=True,
    triggers=("def __call__",),
))
