import ast
import re

from agent.checks.flow import Scope, local_uses
from agent.checks.registry import Rule, register, walk

# Masks over tokens (padding), not inpainting masks or masked-image latents.
_ATTENTION_MASK = re.compile(r"(?:attention|attn|embeds|padding|text|prompt|token)_mask$")


def check(ctx):
    for cls, call in ctx.classes.pipeline_calls():
        first: dict[str, ast.Name] = {}
        for node in ctx.inside(call, ast.Assign):
            if not isinstance(node.value, ast.Call):
                continue
            for target in node.targets:
                for n in walk(target):
                    if isinstance(n, ast.Name) and _ATTENTION_MASK.search(n.id):
                        first.setdefault(n.id, n)
        if not first:
            continue
        verdicts = local_uses(call, sorted(first), Scope.of(ctx, cls))
        for name, n in sorted(first.items(), key=lambda kv: kv[1].lineno):
            if not verdicts[name].used:
                yield n, f"{cls.name}.__call__ computes {name} but it is {verdicts[name].why}: padded tokens are attended to"


RULE = register(Rule(
    id="P012",
    name="pipeline-mask-dropped",
    scope="pipelines",
    summary="Masks a pipeline computes reach the model.",
    what="An attention (padding) mask a pipeline's __call__ gets from a call (encode_prompt, a tokenizer, a helper) whose value never reaches the transformer, another call that uses it, or the output.",
    why="The text encoder pads prompts; without the mask the transformer attends to padding and results change with prompt length and batch composition.",
    bad="prompt_embeds, prompt_attention_mask = self.encode_prompt(prompt)\nnoise_pred = self.transformer(latents, encoder_hidden_states=prompt_embeds)",
    good="noise_pred = self.transformer(\n    latents, encoder_hidden_states=prompt_embeds, encoder_attention_mask=prompt_attention_mask\n)",
    anchor="models.md#masks",
    check=check,
    triggers=("mask",),
))
