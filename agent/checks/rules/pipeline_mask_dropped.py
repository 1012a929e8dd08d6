import ast
import re

from agent.checks.flow import Scope, local_uses
from agent.checks.registry import Rule, register, walk

# Masks over tokens (padding), not inpainting masks or masked-image latents.
_ATTENTION_MASK = re.compile(r"(?:attention|attn|embeds|padding|text|prompt|token)_mask$")


_FORWARD = re.compile(r"def forward\((.*?)\)\s*(?:->[^:]*)?:", re.S)


def _models_take_masks(ctx, cls: ast.ClassDef) -> bool:
    """False when every model component the pipeline is built with (by its __init__'s annotations)
    has a forward without a mask argument: there is nowhere to pass a mask."""
    from agent.checks.indexes import class_files
    from agent.checks.tree import installed_root

    init = ctx.classes.method(cls, "__init__")
    root = ctx.root or installed_root()
    if init is None or root is None:
        return True
    files = class_files(ctx, root)
    seen = False
    for arg in init.args.args[1:]:
        names = [n.id for n in walk(arg.annotation) if isinstance(n, ast.Name)] if arg.annotation is not None else []
        for name in (n for n in names if n in files and n.endswith("Model")):
            text = ctx.read_other(files[name]) or ""
            start = text.find(f"class {name}(")
            if start < 0:
                continue
            nxt = re.search(r"^class ", text[start + 1:], re.M)
            block = text[start: start + 1 + nxt.start()] if nxt else text[start:]
            m = _FORWARD.search(block)
            if m is None:
                return True
            seen = True
            if "mask" in m.group(1):
                return True
    return not seen


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
        if not first or not _models_take_masks(ctx, cls):
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
