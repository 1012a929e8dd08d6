import ast

from agent.checks.flow import Flow, Scope, params
from agent.checks.registry import Rule, register

COUNTS = ("num_images_per_prompt", "num_videos_per_prompt", "num_waveforms_per_prompt", "num_samples_per_prompt")


def _per_prompt(node: ast.expr) -> str:
    """The name of a returned per-prompt tensor (embeddings, masks), or ''."""
    if isinstance(node, ast.Name) and ("embed" in node.id or "mask" in node.id):
        return node.id
    return ""


def check(ctx):
    for cls in ctx.classes.all:
        if not ctx.classes.is_pipeline(cls):
            continue
        scope = None
        for fn in ctx.classes.methods(cls).values():
            count = next((a.arg for a in params(fn) if a.arg in COUNTS), None)
            if count is None or fn.name == "__call__":
                continue
            scope = scope or Scope.of(ctx, cls)
            returns = Flow(fn, scope).taint([count])
            reported = set()
            for ret, tainted in returns:
                parts = ret.value.elts if isinstance(ret.value, ast.Tuple) else [ret.value]
                for part, t in zip(parts, tainted, strict=False):
                    name = _per_prompt(part)
                    if name and not t and name not in reported:
                        reported.add(name)
                        yield ret, f"{cls.name}.{fn.name}() returns {name} without expanding it for {count}: batched outputs get the wrong conditioning"


RULE = register(Rule(
    id="P009",
    name="pipeline-batch-expansion",
    scope="pipelines",
    summary="Per-prompt tensors are expanded for num_images_per_prompt.",
    what="A pipeline method that takes num_images_per_prompt (or num_videos_per_prompt) and returns an embedding or mask that no computation involving that count reached (no repeat / repeat_interleave / expand with it).",
    why="With num_images_per_prompt > 1 the latents batch grows but the conditioning does not: shapes mismatch, or worse, broadcast silently and pair prompts with the wrong images.",
    bad="prompt_embeds = self.text_encoder(ids)[0]\nreturn prompt_embeds, prompt_attention_mask  # mask never repeated",
    good="prompt_embeds = prompt_embeds.repeat_interleave(num_images_per_prompt, dim=0)\nprompt_attention_mask = prompt_attention_mask.repeat_interleave(num_images_per_prompt, dim=0)",
    anchor="pipelines.md#arguments",
    check=check,
    triggers=COUNTS,
))
