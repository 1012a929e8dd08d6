import ast
import re

from agent.checks.astutil import classes, dotted, is_pipeline
from agent.checks.registry import Rule, register

RANDOM = {"torch.randn", "torch.randn_like", "torch.rand", "torch.rand_like", "torch.randint", "torch.normal"}


def check(ctx):
    for cls in classes(ctx.tree):
        if not is_pipeline(cls):
            continue
        for node in ast.walk(cls):
            if isinstance(node, ast.Call) and dotted(node.func) in RANDOM:
                has_generator = any(kw.arg == "generator" for kw in node.keywords)
                if not has_generator:
                    yield node, f"{cls.name} draws noise with {dotted(node.func)} without a generator: use randn_tensor(shape, generator=generator, ...)"


RULE = register(Rule(
    id="P003",
    name="pipeline-randn-tensor",
    scope="pipelines",
    summary="Latents and noise are drawn with randn_tensor and the user's generator.",
    what="A torch.randn / torch.rand / randn_like call without generator= inside a pipeline class.",
    why="The generator argument is how users make runs reproducible; noise drawn without it differs on every call and across devices.",
    bad="latents = torch.randn(shape, device=device, dtype=dtype)",
    good="latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)",
    anchor="pipelines.md#arguments",
    check=check,
    prefilter=lambda s: "Pipeline" in s and re.search(r"torch\.(?:randn|rand|randint|normal)(?:_like)?\(", s) is not None,
))
