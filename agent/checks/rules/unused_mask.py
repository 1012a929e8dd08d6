import ast
import re

from agent.checks.astutil import names_used
from agent.checks.registry import Rule, register


def check(ctx):
    for fn in ctx.of_type(ast.FunctionDef, ast.AsyncFunctionDef):
        params = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
        if not any("mask" in a.arg.lower() for a in params):
            continue
        body_names = set().union(*(names_used(stmt) for stmt in fn.body)) if fn.body else set()
        if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("locals", "vars") for n in ast.walk(fn)):
            continue
        for arg in params:
            if "mask" in arg.arg.lower() and arg.arg not in body_names:
                yield arg, f"{fn.name}() accepts {arg.arg!r} but never uses it: callers' masks are silently dropped"


RULE = register(Rule(
    id="M004",
    name="unused-mask",
    scope="models",
    summary="A declared mask argument must be used.",
    what="A function parameter whose name contains 'mask' that the function body never reads.",
    why="Padding masks that are accepted and ignored give wrong results for batched, variable-length inputs, with no error anywhere.",
    bad="def forward(self, x, attention_mask=None):\n    return self.attn(x)",
    good="def forward(self, x, attention_mask=None):\n    return self.attn(x, attention_mask=attention_mask)",
    anchor="models.md#masks",
    check=check,
    prefilter=re.compile(r"def\s+\w+\s*\([^)]*mask").search,
))
