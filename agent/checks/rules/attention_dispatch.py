import ast

from agent.checks.astutil import dotted
from agent.checks.registry import Rule, register


def check(ctx):
    if ctx.path.name == "attention_dispatch.py":
        return  # the dispatcher itself is where SDPA is called
    for node in ctx.of_type(ast.Call):
        if isinstance(node, ast.Call) and dotted(node.func).split(".")[-1] == "scaled_dot_product_attention":
            yield node, "attention calls scaled_dot_product_attention directly; route it through dispatch_attention_fn so backends can be switched"


RULE = register(Rule(
    id="M002",
    name="attention-dispatch",
    scope="models",
    summary="Attention goes through dispatch_attention_fn, not F.scaled_dot_product_attention.",
    what="A direct call to `scaled_dot_product_attention` in model code.",
    why="diffusers selects attention backends (flash, sage, native, context-parallel) in one place; a direct call silently opts the model out of all of them.",
    bad="out = F.scaled_dot_product_attention(q, k, v)  # (batch, heads, seq, dim)",
    good="out = dispatch_attention_fn(q, k, v)  # (batch, seq, heads, dim)",
    anchor="models.md#attention-dispatch",
    check=check,
    triggers=("scaled_dot_product_attention",),
))
