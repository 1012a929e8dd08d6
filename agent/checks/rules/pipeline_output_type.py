import ast

from agent.checks.registry import Rule, register
from agent.checks.rules.pipeline_no_grad import is_pipeline_call


def _mentions_latent(call: ast.FunctionDef) -> bool:
    return any(isinstance(n, ast.Constant) and n.value in ("latent", "latents") for n in ast.walk(call))


def _forwards(call: ast.FunctionDef) -> bool:
    """output_type passed on to another call (combined pipelines delegate the decode)."""
    return any(isinstance(n, ast.keyword) and n.arg == "output_type" for n in ast.walk(call))


def check(ctx):
    # only pipelines with a VAE have a decode that output_type="latent" skips
    if not is_pipeline_call(ctx) or "self.vae" not in ctx.source:
        return
    call = ctx.tree.body[0]
    if not isinstance(call, ast.FunctionDef):
        return
    params = {a.arg: a for a in [*call.args.args, *call.args.kwonlyargs]}
    if "output_type" in params and not _mentions_latent(call) and not _forwards(call):
        yield params["output_type"], f"{ctx.class_name}.__call__ takes output_type but never handles output_type='latent'"
    if "output_type" not in params and "return_dict" in params:
        yield call, f"{ctx.class_name}.__call__ has no output_type argument: callers cannot ask for latents"


RULE = register(Rule(
    id="P004",
    name="pipeline-output-type",
    scope="pipelines",
    summary="output_type='latent' is supported and skips the VAE decode.",
    what="A pipeline __call__ with no output_type argument, or one that never compares it with 'latent'.",
    why="Chaining pipelines (refiners, upscalers) and saving memory both depend on getting latents back without a decode.",
    bad='def __call__(self, prompt, output_type="pil", return_dict=True):\n    image = self.vae.decode(latents).sample',
    good='if output_type == "latent":\n    image = latents\nelse:\n    image = self.vae.decode(latents).sample',
    anchor="pipelines.md#arguments",
    check=check,
    kind="call",
    triggers=("def __call__",),
))
