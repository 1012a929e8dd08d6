import ast

from agent.checks.registry import Rule, register

HALF = {"torch.float16", "torch.half", "torch.bfloat16"}
DOUBLE = {"torch.float64", "torch.double", "numpy.float64"}


def _unconditional(body: list[ast.stmt]):
    """Statements that run on every call (not under an if/try/match choice)."""
    stack = list(reversed(body))
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, (ast.If, ast.Try, ast.Match, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(stmt, (ast.For, ast.While, ast.With)):
            stack.extend(reversed(stmt.body))
            continue
        yield stmt


def _walk_unconditional(node: ast.AST):
    """ast.walk that does not descend into conditional expressions (x if mps else y)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.IfExp, ast.Lambda)):
            continue
        yield n
        stack.extend(ast.iter_child_nodes(n))


class _Dtypes:
    """dtype constants of one function: `dt = torch.float64` makes `dtype=dt` a float64 cast."""

    def __init__(self, ctx, fn) -> None:
        self.ctx = ctx
        self.local: dict[str, str] = {}
        for stmt in _unconditional(fn.body):
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                q = self.name(stmt.value)
                if q in HALF | DOUBLE:
                    self.local[stmt.targets[0].id] = q

    def name(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name) and node.id in self.local:
            return self.local[node.id]
        if isinstance(node, (ast.Attribute, ast.Name)):
            q = self.ctx.names.qualify(node)
            if q in HALF | DOUBLE:
                return q
        return ""


def _casts(d: _Dtypes, node: ast.AST):
    """(dtype, node) for explicit casts: dtype=..., .to(...), .type(...), .double(), .half()."""
    if not isinstance(node, ast.Call):
        return
    for kw in node.keywords:
        if kw.arg and kw.arg.endswith("dtype") and d.name(kw.value):
            yield d.name(kw.value), kw.value
    if isinstance(node.func, ast.Attribute):
        if node.func.attr in ("to", "type", "astype") and node.args and d.name(node.args[0]):
            yield d.name(node.args[0]), node.args[0]
        elif node.func.attr in ("double", "half", "bfloat16") and not node.args and not node.keywords:
            yield {"double": "torch.float64", "half": "torch.float16", "bfloat16": "torch.bfloat16"}[node.func.attr], node


def _sites(ctx, fn):
    d = _Dtypes(ctx, fn)
    for stmt in _unconditional(fn.body):
        for node in _walk_unconditional(stmt):
            yield from ((name, where, node) for name, where in _casts(d, node))


def _float64_helpers(ctx) -> dict[str, str]:
    """Same-file functions and methods that compute in float64 on every call: name -> dtype."""
    out = {}
    for fn in [*(n for n in ctx.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))),
               *(m for c in ctx.classes.all for m in ctx.classes.methods(c).values() if m.name != "forward")]:
        for name, _where, _node in _sites(ctx, fn):
            if name in DOUBLE:
                out[fn.name] = name
                break
    return out


def check(ctx):
    helpers = None
    for cls in ctx.classes.all:
        forward = ctx.classes.methods(cls).get("forward")
        if forward is None:
            continue
        for name, where, _node in _sites(ctx, forward):
            if name in DOUBLE:
                yield where, f"{cls.name}.forward computes in float64 unconditionally ({name}): breaks on MPS and is slow everywhere"
            else:
                yield where, f"{cls.name}.forward hard-codes {name}: follow the input's or the module's dtype"
        if helpers is None:
            helpers = _float64_helpers(ctx) if ("float64" in ctx.source or "double" in ctx.source) else {}
        if not helpers:
            continue
        for stmt in _unconditional(forward.body):
            for node in _walk_unconditional(stmt):
                if not isinstance(node, ast.Call):
                    continue
                f = node.func
                called = f.id if isinstance(f, ast.Name) else (f.attr if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "self" else "")
                if called in helpers:
                    yield node, f"{cls.name}.forward calls {called}(), which computes in float64 on every call: breaks on MPS and is slow everywhere"


RULE = register(Rule(
    id="M009",
    name="hardcoded-dtype",
    scope="models",
    summary="No hard-coded compute dtype and no unconditional float64 in forward.",
    what="A cast to float16 / bfloat16 in forward (dtype=, .to(), .half()), or to float64 (.double(), dtype=torch.float64, a variable holding it, a same-file helper that does it) on a path every call takes.",
    why="The model must run in whatever precision the user loads it in; float64 is unsupported on MPS and very slow on GPUs. Upcasting to float32 for a sensitive step is fine.",
    bad="def forward(self, x):\n    freqs = torch.arange(dim, dtype=torch.float64)",
    good="def forward(self, x):\n    is_mps = x.device.type == 'mps'\n    freqs = torch.arange(dim, dtype=torch.float32 if is_mps else torch.float64)",
    anchor="models.md#dtype",
    check=check,
    prefilter=lambda s: "def forward" in s and any(t in s for t in ("float64", "double", "float16", "half", "bfloat16")),
))
