import ast

from agent.checks.registry import Rule, register

RANDOM = {
    "torch.randn", "torch.randn_like", "torch.rand", "torch.rand_like", "torch.randint", "torch.randint_like",
    "torch.normal", "torch.randperm", "torch.multinomial", "torch.bernoulli",
}
IN_PLACE = {"normal_", "uniform_", "random_", "exponential_", "bernoulli_"}


def _without_generator(ctx, node: ast.Call) -> str:
    """The random call's name when it draws without a (non-None) generator, else ''."""
    q = ctx.names.qualify(node.func)
    if q in RANDOM or q.endswith(".randn_tensor"):
        name = q
    elif isinstance(node.func, ast.Attribute) and node.func.attr in IN_PLACE and not q:
        name = f".{node.func.attr}()"
    else:
        return ""
    gen = next((k.value for k in node.keywords if k.arg == "generator"), None)
    if gen is None and name.endswith("randn_tensor") and len(node.args) >= 2:
        gen = node.args[1]
    if gen is None or (isinstance(gen, ast.Constant) and gen.value is None):
        return name
    return ""


def check(ctx):
    pipelines = [c for c in ctx.classes.all if ctx.classes.is_pipeline(c)]
    if not pipelines:
        return
    tops = [c for c in ctx.tree.body if isinstance(c, ast.ClassDef) and c in pipelines]
    # module-level helpers the pipelines call are part of the pipeline
    called = {n.func.id for c in tops for n in ctx.inside(c, ast.Call) if isinstance(n.func, ast.Name)}
    helpers = [n for n in ctx.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in called]
    calls = [n for owner in [*tops, *helpers] for n in ctx.inside(owner, ast.Call)]
    no_generator_branches = _branches_without_generator(ctx, [*tops, *helpers])
    for node in calls:
        name = _without_generator(ctx, node)
        if not name or any(lo <= node.lineno <= hi for lo, hi in no_generator_branches):
            continue
        owner = _owner(ctx, node)
        if owner in pipelines:
            yield node, f"{owner.name} draws noise with {name} without the user's generator: use randn_tensor(shape, generator=generator, ...)"
        else:
            helper = next((h for h in helpers if h.lineno <= node.lineno <= h.end_lineno), None)
            if helper is not None:
                yield node, f"{helper.name}(), which a pipeline calls, draws noise with {name} without the user's generator: use randn_tensor(shape, generator=generator, ...)"


def _branches_without_generator(ctx, owners) -> list[tuple[int, int]]:
    """Line ranges of branches taken when the user gave no generator (`if generator is None:` body,
    `if generator is not None:` else): drawing without one there is the documented behaviour."""
    out = []
    for owner in owners:
        for node in ctx.inside(owner, ast.If):
            t = node.test
            if not (isinstance(t, ast.Compare) and isinstance(t.left, ast.Name) and t.left.id == "generator"
                    and len(t.ops) == 1 and isinstance(t.comparators[0], ast.Constant) and t.comparators[0].value is None):
                continue
            branch = node.body if isinstance(t.ops[0], ast.Is) else node.orelse
            if branch:
                out.append((branch[0].lineno, branch[-1].end_lineno))
    return out


def _owner(ctx, node):
    """The module-level class around `node`."""
    return ctx.outer_class_at(node)


RULE = register(Rule(
    id="P003",
    name="pipeline-randn-tensor",
    scope="pipelines",
    summary="Latents and noise are drawn with randn_tensor and the user's generator.",
    what="A torch random call (under any alias, or in a helper the pipeline calls) or randn_tensor without generator= (or with generator=None) in a pipeline.",
    why="The generator argument is how users make runs reproducible; noise drawn without it differs on every call and across devices.",
    bad="latents = torch.randn(shape, device=device, dtype=dtype)",
    good="latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)",
    anchor="pipelines.md#arguments",
    check=check,
    prefilter=lambda s: "Pipeline" in s and any(t in s for t in ("rand", "normal", "multinomial", "bernoulli", "uniform_")),
))
