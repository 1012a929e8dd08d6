import ast

from agent.checks.astutil import constant_int
from agent.checks.registry import Rule, register

NAMES = ("vae_scale_factor", "num_channels_latents", "latent_channels", "vae_latent_channels")


def _target(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return ""


def check(ctx):
    pipelines = [c for c in ctx.classes.all if ctx.classes.is_pipeline(c)]
    if not pipelines:
        return
    hard, from_config = [], set()
    for node in ctx.of_type(ast.Assign, ast.AnnAssign):
        if node.value is None or not any(ctx.classes.contains(c, node) for c in pipelines):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for t in targets:
            name = _target(t)
            if name not in NAMES:
                continue
            value = constant_int(node.value)
            if value is not None:
                hard.append((node, name, value))
            else:
                from_config.add(name)  # a fallback, replaced from the component when it is there
    for node, name, value in hard:
        if name not in from_config:
            yield node, f"{name} is hard-coded to {value}: read it from the component's config"


RULE = register(Rule(
    id="P008",
    name="pipeline-hardcoded-config",
    scope="pipelines",
    summary="VAE scale factor and latent channels come from the components' configs.",
    what="An assignment of a literal number (or a constant expression like `2 ** 3`) to vae_scale_factor, num_channels_latents or latent_channels in a pipeline class, with no assignment from a config beside it.",
    why="A checkpoint with another VAE or transformer then runs with the wrong latent shape, often without an error.",
    bad="self.vae_scale_factor = 8",
    good='self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1) if getattr(self, "vae", None) else 8',
    anchor="pipelines.md#config-values",
    check=check,
    triggers=NAMES,
))
