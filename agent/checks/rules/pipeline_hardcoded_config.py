import re

from agent.checks.registry import Rule, register

_HARD = re.compile(r"^\s*(?:self\.)?(vae_scale_factor|num_channels_latents|latent_channels)\s*=\s*(\d+)\s*(?:#.*)?$", re.M)


def check(ctx):
    if "Pipeline" not in ctx.source:
        return
    for match in _HARD.finditer(ctx.source):
        if re.search(rf"{match.group(1)}\s*=[^\n]*(?:\.config\b|self\.\w+\.)", ctx.source):
            continue  # a fallback default, replaced from the component when it is there
        line = ctx.line_at(match.start())
        yield line, f"{match.group(1)} is hard-coded to {match.group(2)}: read it from the component's config"


RULE = register(Rule(
    id="P008",
    name="pipeline-hardcoded-config",
    scope="pipelines",
    summary="VAE scale factor and latent channels come from the components' configs.",
    what="An assignment of a literal number to vae_scale_factor, num_channels_latents or latent_channels in a pipeline file.",
    why="A checkpoint with another VAE or transformer then runs with the wrong latent shape, often without an error.",
    bad="self.vae_scale_factor = 8",
    good='self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1) if getattr(self, "vae", None) else 8',
    anchor="pipelines.md#config-values",
    check=check,
    kind="text",
    prefilter=lambda s: "Pipeline" in s and _HARD.search(s) is not None,
))
