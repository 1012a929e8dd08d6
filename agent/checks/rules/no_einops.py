import ast

from agent.checks.registry import Rule, register

MESSAGE = "einops is imported; diffusers models use native torch reshapes (reshape/permute/flatten/unflatten)"


def check(ctx):
    for node in ctx.of_type(ast.Import, ast.ImportFrom, ast.Call):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "einops" for a in node.names):
            yield node, MESSAGE
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "einops":
            yield node, MESSAGE
        elif isinstance(node, ast.Call) and ctx.names.qualify(node).split(".")[0] == "einops":
            yield node, MESSAGE  # importlib.import_module("einops") / __import__("einops")


RULE = register(Rule(
    id="M001",
    name="no-einops",
    scope="models",
    summary="Model code must not depend on einops.",
    what="An `import einops`, `from einops import ...` (under any alias) or a dynamic import of einops in a model file.",
    why="diffusers does not depend on einops; every pattern has an exact torch equivalent that is also easier to trace and compile.",
    bad='x = rearrange(x, "b c h w -> b (h w) c")',
    good="x = x.flatten(2).transpose(1, 2)",
    anchor="models.md#no-einops",
    check=check,
    triggers=("einops",),
))
