import ast

from agent.checks.registry import Rule, register, walk
from agent.checks.tamper import SCOPE_ANCHOR

GLOBAL_HOOKS = (
    "torch.nn.modules.module.register_module_forward_hook", "torch.nn.modules.module.register_module_forward_pre_hook",
    "torch.nn.modules.module.register_module_full_backward_hook", "torch.nn.modules.module.register_module_backward_hook",
    "torch.nn.modules.module.register_module_buffer_registration_hook",
    "torch.nn.modules.module.register_module_module_registration_hook",
    "torch.nn.modules.module.register_module_parameter_registration_hook", "torch.library", "torch.overrides",
    "torch.utils._python_dispatch", "torch._C",
)


def _outside(ctx, node: ast.AST) -> str:
    """The imported module (or object of one) that `node` names, '' for the file's own objects."""
    q = ctx.names.qualify(node)
    if not q or q == "os.environ" or q.startswith("os.environ."):
        return ""  # the environment is T006's
    root = q.split(".")[0]
    if root in ("builtins",) or q.startswith("sys.modules"):
        return q
    first = node
    while isinstance(first, (ast.Attribute, ast.Subscript)):
        first = first.value
    if isinstance(first, ast.Call):
        return q  # getattr(torch, "nn"), vars(torch), importlib.import_module("torch")
    if isinstance(first, ast.Name) and first.id in ctx.names.table and first.id not in ctx.classes.by_name:
        return q
    return ""


def _targets(stmt: ast.stmt):
    if isinstance(stmt, ast.Assign):
        for t in stmt.targets:
            yield from (n for n in walk(t) if isinstance(n, (ast.Attribute, ast.Subscript)) and isinstance(n.ctx, ast.Store))
    elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
        if isinstance(stmt.target, (ast.Attribute, ast.Subscript)):
            yield stmt.target
    elif isinstance(stmt, ast.Delete):
        yield from (t for t in stmt.targets if isinstance(t, (ast.Attribute, ast.Subscript)))


def _lazy_module_idiom(stmt) -> bool:
    """diffusers' lazy `__init__`: `sys.modules[__name__] = _LazyModule(...)`."""
    return (
        isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call)
        and getattr(stmt.value.func, "id", getattr(stmt.value.func, "attr", "")) == "_LazyModule"
    )


def check(ctx):
    for stmt in ctx.of_type(ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete):
        if _lazy_module_idiom(stmt):
            continue
        for target in _targets(stmt):
            owner = _outside(ctx, target.value)
            if owner:
                what = f"{owner}.{target.attr}" if isinstance(target, ast.Attribute) else f"{owner}[...]"
                yield target, f"changes {what}: a model file may not patch torch, builtins or other modules"
    for node in ctx.of_type(ast.Subscript):
        if isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Call) and ctx.names.qualify(node.value.func) in ("builtins.globals", "builtins.vars"):
            yield node, "writes into globals(): a model file may not rebind names behind the reader's back"
    for node in ctx.of_type(ast.Call):
        q = ctx.names.qualify(node.func)
        if q in ("builtins.setattr", "builtins.delattr") and node.args:
            owner = _outside(ctx, node.args[0])
            if owner:
                yield node, f"{q.split('.')[-1]}({owner}, ...): a model file may not patch torch, builtins or other modules"
        elif q and any(q == h or q.startswith(h + ".") for h in GLOBAL_HOOKS):
            yield node, f"calls {q}: a model file may not install global hooks or overrides"
        elif isinstance(node.func, ast.Attribute) and node.func.attr in ("update", "__setitem__", "setdefault", "pop", "clear"):
            owner = _outside(ctx, node.func.value)
            if owner.endswith("__dict__") or owner.startswith("sys.modules") or owner == "builtins.vars":
                yield node, f"changes {owner}: a model file may not patch torch, builtins or other modules"


RULE = register(Rule(
    id="T007",
    name="tamper-monkeypatch",
    scope="port",
    summary="A port's model file does not patch torch, builtins or any other module.",
    what="An assignment, augmented assignment or `del` on an attribute or item of an imported module or of an object from one (`F.gelu = ...`, `torch.Tensor.__add__ = ...`, `torch.backends.cudnn.allow_tf32 = ...`, `sys.modules[...] = ...`), `setattr`/`delattr` on one, writes to a module's `__dict__`, `globals()`, or global module hooks and operator overrides.",
    why="Patching torch changes what the reference computes in the same process, so both sides agree while both are wrong; global hooks see and alter every module's outputs.",
    bad="import torch.nn.functional as F\nF.gelu = lambda x, approximate='none': x",
    good="class MyGELU(nn.Module):\n    def forward(self, x):\n        return F.gelu(x)",
    anchor=SCOPE_ANCHOR,
    check=check,
    blocks_pass=True,
    default=False,
))
