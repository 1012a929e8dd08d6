import ast
import re

from agent.checks.registry import Rule, register, walk

SIZES = ("height", "width", "num_frames")


def _text(node: ast.AST) -> str:
    return re.sub(r"\s+|[()]", "", ast.unparse(node))


def _reads_size(node: ast.AST) -> str:
    for n in walk(node):
        if isinstance(n, ast.Name) and n.id in SIZES:
            return n.id
    return ""


def check(ctx):
    for cls in ctx.classes.all:
        if not ctx.classes.is_pipeline(cls):
            continue
        check_inputs = ctx.classes.method(cls, "check_inputs")
        if check_inputs is None:
            continue
        # what latent shapes are divided by: `height // (self.vae_scale_factor * 2)`
        divisors: dict[str, set[str]] = {}
        for c in ctx.classes.lineage(cls):
            for n in ctx.inside(c, ast.BinOp):
                if isinstance(n.op, ast.FloorDiv) and _reads_size(n.left):
                    divisors.setdefault(_reads_size(n.left), set()).add(_text(n.right))
        for n in ctx.inside(check_inputs, ast.BinOp):
            if not (isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod) and isinstance(n.left, ast.Name) and n.left.id in SIZES):
                continue
            size, checked = n.left.id, _text(n.right)
            used = {d for d in divisors.get(size, set()) if "vae" in d}  # pixel -> latent sizes go through the VAE
            if not used or checked in used:
                continue
            if isinstance(n.right, ast.Constant):
                yield n, f"{cls.name}.check_inputs checks {size} % {checked}, a hard-coded number, while latents are sized by {sorted(used)[0]}"
            elif any(checked in d and checked != d for d in used):
                yield n, f"{cls.name}.check_inputs checks {size} % {checked} but latents are sized by {sorted(used)[0]}: sizes that pass the check still fail in packing"


RULE = register(Rule(
    id="P011",
    name="pipeline-check-inputs-divisibility",
    scope="pipelines",
    summary="check_inputs validates sizes against what the latents are divided by (vae_scale_factor * patch size).",
    what="A `height % N` / `width % N` check in check_inputs where N is a hard-coded number or a factor of the divisor the pipeline sizes its latents with (`vae_scale_factor` when latents use `vae_scale_factor * 2`).",
    why="Sizes that pass validation then fail (or are silently truncated) when latents are packed into patches; users get a shape error deep in the transformer instead of a clear message.",
    bad="if height % 8 != 0:  # latents use height // (self.vae_scale_factor * 2)",
    good="if height % (self.vae_scale_factor * 2) != 0:",
    anchor="pipelines.md#config-values",
    check=check,
    triggers=("check_inputs",),
))
