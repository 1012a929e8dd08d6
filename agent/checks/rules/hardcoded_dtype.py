import ast
import re

from agent.checks.astutil import classes, dotted, methods
from agent.checks.registry import Rule, register

_CAST_TEXT = re.compile(
    r"dtype\s*=\s*torch\.(?:float64|double|float16|half|bfloat16)\b"
    r"|\.(?:to|type)\(\s*torch\.(?:float64|double|float16|half|bfloat16)\b|\.(?:double|half)\(\)"
)
HALF = {"torch.float16", "torch.half", "torch.bfloat16"}
DOUBLE = {"torch.float64", "torch.double"}


def _unconditional(fn: ast.FunctionDef):
    """Statements of `fn` that run on every call (not under an if/try/with-branch choice)."""
    stack = list(fn.body)
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, (ast.If, ast.Try, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(stmt, (ast.For, ast.While, ast.With)):
            stack.extend(stmt.body)
            continue
        yield stmt


def _walk_unconditional(node: ast.AST):
    """ast.walk that does not descend into conditional expressions (x if mps else y)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.IfExp):
            continue
        yield n
        stack.extend(ast.iter_child_nodes(n))


def _casts(node: ast.AST):
    """(dtype name, node) for explicit casts: dtype=..., .to(...), .type(...), .double(), .half()."""
    if not isinstance(node, ast.Call):
        return
    for kw in node.keywords:
        if kw.arg == "dtype" and dotted(kw.value) in HALF | DOUBLE:
            yield dotted(kw.value), kw.value
    if isinstance(node.func, ast.Attribute):
        if node.func.attr in ("to", "type") and node.args and dotted(node.args[0]) in HALF | DOUBLE:
            yield dotted(node.args[0]), node.args[0]
        elif node.func.attr in ("double", "half") and not node.args:
            yield f".{node.func.attr}()", node


def check(ctx):
    for cls in classes(ctx.tree):
        forward = methods(cls).get("forward")
        if forward is None:
            continue
        for stmt in _unconditional(forward):
            for node in _walk_unconditional(stmt):
                for name, where in _casts(node):
                    if name in DOUBLE or name == ".double()":
                        yield where, f"{cls.name}.forward computes in float64 unconditionally ({name}): breaks on MPS and is slow everywhere"
                    else:
                        yield where, f"{cls.name}.forward hard-codes {name}: follow the input's or the module's dtype"


RULE = register(Rule(
    id="M009",
    name="hardcoded-dtype",
    scope="models",
    summary="No hard-coded compute dtype and no unconditional float64 in forward.",
    what="A cast to float16 / bfloat16 in forward (dtype=, .to(), .half()), or to float64 (.double(), dtype=torch.float64) on a path every call takes.",
    why="The model must run in whatever precision the user loads it in; float64 is unsupported on MPS and very slow on GPUs. Upcasting to float32 for a sensitive step is fine.",
    bad="def forward(self, x):\n    freqs = torch.arange(dim, dtype=torch.float64)",
    good="def forward(self, x):\n    is_mps = x.device.type == 'mps'\n    freqs = torch.arange(dim, dtype=torch.float32 if is_mps else torch.float64)",
    anchor="models.md#dtype",
    check=check,
    prefilter=lambda s: "def forward" in s and _CAST_TEXT.search(s) is not None,
))
