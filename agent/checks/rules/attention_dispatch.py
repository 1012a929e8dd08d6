import ast

from agent.checks.astutil import derived, own_nodes
from agent.checks.registry import Rule, register, walk

SDPA = {"torch.nn.functional.scaled_dot_product_attention", "torch._C._nn.scaled_dot_product_attention"}
SOFTMAX = {"torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax"}
MATMUL = {"torch.matmul", "torch.bmm", "torch.baddbmm", "torch.einsum", "torch.mm"}


def _is_dispatcher(ctx) -> bool:
    """The module that implements dispatch_attention_fn is where SDPA is meant to be called."""
    return any(isinstance(n, ast.FunctionDef) and n.name == "dispatch_attention_fn" for n in ctx.tree.body)


def _transformers_style(ctx) -> bool:
    """Text encoders vendored from transformers follow transformers' attention conventions."""
    return any(ctx.classes.inherits(c, "PreTrainedModel") for c in ctx.classes.all)


def _is_softmax(ctx, node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    if ctx.names.qualify(node.func) in SOFTMAX:
        return True
    return isinstance(node.func, ast.Attribute) and node.func.attr == "softmax" and not ctx.names.qualify(node.func)


def _is_matmul(ctx, node: ast.AST) -> bool:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        return True
    if isinstance(node, ast.Call):
        q = ctx.names.qualify(node.func)
        if q in MATMUL:
            return True
        return isinstance(node.func, ast.Attribute) and node.func.attr in ("matmul", "bmm", "baddbmm") and not q
    return False


def _contains_matmul(ctx, expr: ast.AST, fn: ast.AST) -> bool:
    if any(_is_matmul(ctx, n) for n in walk(expr)):
        return True
    # one step back through the variables the expression reads (`scores = q @ k.T; scores.softmax(-1)`)
    read = {n.id for n in walk(expr) if isinstance(n, ast.Name)}
    for node in own_nodes(fn):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in read for t in node.targets):
            if any(_is_matmul(ctx, n) for n in walk(node.value)):
                return True
    return False


def manual_attention(ctx, fn: ast.AST):
    """softmax(q @ k^T) @ v written out by hand in one function: the softmax call."""
    for node in own_nodes(fn):
        if not _is_softmax(ctx, node):
            continue
        inputs = [*node.args, *(k.value for k in node.keywords)]
        if isinstance(node.func, ast.Attribute) and not ctx.names.qualify(node.func):
            inputs.append(node.func.value)
        if not any(_contains_matmul(ctx, i, fn) for i in inputs):
            continue
        weights = derived(fn, set(), start=node)
        for other in own_nodes(fn):
            if other is node or not _is_matmul(ctx, other):
                continue
            operands = list(walk(other))
            if any(o is node for o in operands) or any(isinstance(o, ast.Name) and o.id in weights for o in operands):
                yield node
                break


def _sdpa_uses(ctx):
    """SDPA called, or handed to something that calls it (`partial(F.scaled_dot_product_attention)`),
    directly or through an alias; a comparison (`func is F.scaled_dot_product_attention`) is not a use."""
    for call in ctx.of_type(ast.Call):
        if ctx.names.qualify(call.func) in SDPA:
            yield call
        for arg in [*call.args, *(k.value for k in call.keywords)]:
            if isinstance(arg, (ast.Name, ast.Attribute)) and ctx.names.qualify(arg) in SDPA:
                yield arg


def check(ctx):
    if _is_dispatcher(ctx) or _transformers_style(ctx) or ctx.classes.defines_legacy_attention():
        return
    for node in _sdpa_uses(ctx) if "scaled_dot_product_attention" in ctx.source else ():
        cls = ctx.class_at(node)
        if cls is not None and cls.name.endswith("2_0"):
            continue  # a legacy processor whose name declares it is the torch 2.0 SDPA implementation
        yield node, "attention calls scaled_dot_product_attention directly; route it through dispatch_attention_fn so backends can be switched"
    if "softmax" in ctx.source:
        lines = [i for i, line in enumerate(ctx.lines, 1) if "softmax" in line]
        for fn in ctx.of_type(ast.FunctionDef, ast.AsyncFunctionDef):
            if not any(fn.lineno <= i <= fn.end_lineno for i in lines):
                continue
            for node in manual_attention(ctx, fn):
                yield node, "attention written by hand (softmax of q @ k^T, then @ v); route it through dispatch_attention_fn so backends can be switched"


RULE = register(Rule(
    id="M002",
    name="attention-dispatch",
    scope="models",
    summary="Attention goes through dispatch_attention_fn, not F.scaled_dot_product_attention or a hand-written softmax.",
    what="A call of `scaled_dot_product_attention` (directly, through an import alias, a variable, `getattr`, or handed to `partial`) or a hand-written `softmax(q @ k^T) @ v` in model code; legacy processors named `...2_0` are the SDPA implementation by definition.",
    why="diffusers selects attention backends (flash, sage, native, context-parallel) in one place; a direct call silently opts the model out of all of them.",
    bad="out = F.scaled_dot_product_attention(q, k, v)  # (batch, heads, seq, dim)",
    good="out = dispatch_attention_fn(q, k, v)  # (batch, seq, heads, dim)",
    anchor="models.md#attention-dispatch",
    check=check,
    triggers=("scaled_dot_product_attention", "softmax"),
))
