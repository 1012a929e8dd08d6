from agent.checks.copies import file_lines, unannotated_copies
from agent.checks.registry import Rule, register
from agent.checks.tree import installed_root


def check(ctx):
    root = ctx.root or installed_root()
    if root is None:
        return
    ctx.depend(f"tree:{root}")
    for line, target, renames in unannotated_copies(file_lines(ctx.source), root, ctx.module, ctx.source):
        spec = f" {renames}" if renames else ""
        yield line + 1, f"identical to diffusers.{target}{spec} but carries no '# Copied from diffusers.{target}{spec}' annotation: fixes to the source will not reach it"


RULE = register(Rule(
    id="R003",
    name="unannotated-copy",
    scope="repository",
    summary="A copy of an annotated diffusers source carries its `# Copied from` annotation.",
    what="A function or class whose code (after its header line) is identical to a source that other copies in diffusers annotate with `# Copied from` (with one of the renamings they use), but which has no annotation itself.",
    why="make fix-copies keeps annotated copies in step with their source; an unannotated copy silently keeps the old code when the source is fixed (hidden coupling).",
    bad="def retrieve_timesteps(scheduler, num_inference_steps=None, ...):\n    ...  # the same code as the annotated copies, no comment",
    good="# Copied from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion.retrieve_timesteps\ndef retrieve_timesteps(scheduler, num_inference_steps=None, ...):",
    anchor="pipelines.md#base-class",
    check=check,
    on_deprecated=True,
))
