import ast
import re

from agent.checks.registry import Rule, register

_MASK_DEF = re.compile(r"^\s*(?:async\s+)?def\s+\w+\s*\([^)]*mask", re.M)
_DEF = re.compile(r"^\s*(?:async\s+)?def\s+\w+\s*\(")


def check(ctx):
    # Text rule: only functions whose signature mentions a mask are parsed, one at a time.
    from agent.checks.engine import def_slices

    for start, _end, _indent, chunk in def_slices(ctx.lines, _DEF):
        header = chunk.split(":\n", 1)[0]
        if "mask" not in header:
            continue
        try:
            fn = ast.parse(chunk).body[0]
        except (SyntaxError, IndexError):
            continue
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or not fn.body or fn.name == "check_inputs":
            continue  # input validation helpers do not compute with the mask
        if fn.name == "__init__" and any("register_to_config" in ast.unparse(d) for d in fn.decorator_list):
            continue  # config arguments are read later through self.config
        body_start = fn.body[0].lineno - 1
        if isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant) and len(fn.body) > 1:
            body_start = fn.body[1].lineno - 1  # the docstring does not count as a use
        body = "\n".join(chunk.splitlines()[body_start:])
        if re.search(r"\b(?:locals|vars)\(\)", body):
            continue
        for arg in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]:
            if arg.arg.startswith(("return_", "use_", "output_")):
                continue  # a flag about masks, not a mask
            if "mask" in arg.arg.lower() and not re.search(rf"\b{re.escape(arg.arg)}\b", body):
                yield start + arg.lineno, f"{fn.name}() accepts {arg.arg!r} but never uses it: callers' masks are silently dropped"


RULE = register(Rule(
    id="M004",
    name="unused-mask",
    scope="models",
    summary="A declared mask argument must be used.",
    what="A function parameter whose name contains 'mask' that the function body never mentions.",
    why="Padding masks that are accepted and ignored give wrong results for batched, variable-length inputs, with no error anywhere.",
    bad="def forward(self, x, attention_mask=None):\n    return self.attn(x)",
    good="def forward(self, x, attention_mask=None):\n    return self.attn(x, attention_mask=attention_mask)",
    anchor="models.md#masks",
    check=check,
    kind="text",
    prefilter=_MASK_DEF.search,
))
