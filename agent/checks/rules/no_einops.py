import ast

from agent.checks.registry import Rule, register


def check(ctx):
    for node in ctx.of_type(ast.Import, ast.ImportFrom):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "einops" for a in node.names):
            yield node, "einops is imported; diffusers models use native torch reshapes (reshape/permute/flatten/unflatten)"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "einops":
            yield node, "einops is imported; diffusers models use native torch reshapes (reshape/permute/flatten/unflatten)"


RULE = register(Rule(
    id="M001",
    name="no-einops",
    scope="models",
    summary="Model code must not depend on einops.",
    what="An `import einops` or `from einops import ...` in a model file.",
    why="diffusers does not depend on einops; every pattern has an exact torch equivalent that is also easier to trace and compile.",
    bad='x = rearrange(x, "b c h w -> b (h w) c")',
    good="x = x.flatten(2).transpose(1, 2)",
    anchor="models.md#no-einops",
    check=check,
    triggers=("einops",),
))
