"""Which classes of a file the model-contract rules (M012-M016) judge, and what their `forward`
returns.

The forward/output contract (`return_dict`, an output dataclass, diffusers' argument names) is
the contract of diffusers' denoisers and autoencoders: the models a pipeline calls with
`return_dict=False` and reads `.sample` from. Auxiliary `ModelMixin` classes (adapters,
projection heads, vocoders, the modeling files inside pipeline folders) legitimately return
plain tensors, so a class is judged only when it is a `ModelMixin` subclass (through aliases and
same-file bases) whose own `forward` takes a timestep, or an autoencoder. Inside a diffusers tree
only `models/` holds such models; a standalone port is judged wherever it is.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from agent.checks.astutil import own_nodes
from agent.checks.classes import FunctionNode
from agent.checks.tree import resolved

_TIME = {"t", "ts", "time", "times", "sigma", "sigmas", "noise_level", "timestep", "timesteps"}
_AUTOENCODER = re.compile(r"^(?:Autoencoder|AutoEncoder)|VAE|Vae(?:[A-Z0-9]|$)")


def params(fn: FunctionNode) -> list[str]:
    """The parameters a caller names (self and *args/**kwargs left out)."""
    a = fn.args
    positional = [p.arg for p in [*a.posonlyargs, *a.args]]
    return positional[1:] + [p.arg for p in a.kwonlyargs]


def is_model_mixin(ctx, cls: ast.ClassDef) -> bool:
    return ctx.classes.inherits(cls, "ModelMixin")


def in_model_folder(ctx) -> bool:
    """A standalone file, or a file under a diffusers tree's `models/` folder."""
    if ctx.root is None:
        return True
    try:
        parts = resolved(ctx.path).relative_to(ctx.root).parts
    except ValueError:
        return True
    return bool(parts) and parts[0] == "models"


def _only_raises(fn: FunctionNode) -> bool:
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return bool(body) and all(isinstance(s, ast.Raise) for s in body)


def _wraps_models(ctx, cls: ast.ClassDef) -> bool:
    """A container of whole models passed in (MultiControlNetModel: `nn.ModuleList(controlnets)`):
    its forward merges their results in the shape the pipelines expect, not a model output."""
    from agent.checks.rules.register_to_config import _container

    init = ctx.classes.methods(cls).get("__init__")
    return init is not None and _container(ctx, init)


def is_autoencoder(ctx, cls: ast.ClassDef) -> bool:
    return bool(_AUTOENCODER.search(cls.name)) or ctx.classes.inherits(cls, "AutoencoderMixin")


def takes_timestep(fn: FunctionNode) -> bool:
    return any(p in _TIME or "timestep" in p for p in params(fn))


def contract_models(ctx) -> Iterator[tuple[ast.ClassDef, FunctionNode]]:
    """(class, its own forward) for each denoiser or autoencoder model class of the file."""
    if not in_model_folder(ctx):
        return
    for cls in ctx.tree.body:
        if not isinstance(cls, ast.ClassDef) or not is_model_mixin(ctx, cls):
            continue
        fn = ctx.classes.methods(cls).get("forward")
        if fn is None or _only_raises(fn) or _wraps_models(ctx, cls):
            continue
        if takes_timestep(fn) or is_autoencoder(ctx, cls):
            yield cls, fn


# What a forward returns -------------------------------------------------------------------------
OUTPUT, TUPLE, VALUE, NONE, UNKNOWN = "output", "tuple", "value", "none", "unknown"


def returns(fn: FunctionNode) -> list[ast.Return]:
    """The function's own return statements (nested functions and classes left out)."""
    return [n for n in own_nodes(fn) if isinstance(n, ast.Return)]


class ReturnKinds:
    """Classifies returned expressions: an output dataclass (a `BaseOutput` subclass, by name or
    same-file lineage, through import aliases, module-level and local variables), a tuple, another
    value (a tensor, a submodule's result), or unknown (a call the file cannot see into). Same-class
    methods and same-file functions that are returned are followed into their own returns."""

    def __init__(self, ctx, cls: ast.ClassDef | None) -> None:
        self.ctx, self.cls = ctx, cls
        self.functions = {n.name: n for n in ctx.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        self._memo: dict[int, set[str]] = {}

    def of_function(self, fn: FunctionNode, depth: int = 0) -> set[str]:
        if id(fn) in self._memo:
            return self._memo[id(fn)]
        self._memo[id(fn)] = {UNKNOWN}  # a recursion answers "unknown"
        kinds: set[str] = set()
        for r in returns(fn):
            kinds |= self.of(r.value, fn, depth)
        self._memo[id(fn)] = kinds or {NONE}
        return self._memo[id(fn)]

    def is_output_class(self, node: ast.expr, fn: FunctionNode | None = None, depth: int = 0) -> bool:
        """`node` names an output dataclass."""
        if isinstance(node, ast.Name) and fn is not None and depth < 4:
            local = [v for names, v in _assigned(fn) if node.id in names]
            if local:
                return any(self.is_output_class(v, fn, depth + 1) for v in local)
        if isinstance(node, ast.IfExp):
            return self.is_output_class(node.body, fn, depth) or self.is_output_class(node.orelse, fn, depth)
        name = self.ctx.names.qualify(node).split(".")[-1] or (node.id if isinstance(node, ast.Name) else "")
        if not name:
            return False
        local = self.ctx.classes.by_name.get(name)
        if local is not None:
            return name.endswith(("Output", "Outputs")) or self.ctx.classes.inherits(local, "BaseOutput")
        return name.endswith(("Output", "Outputs"))

    def of(self, node: ast.expr | None, fn: FunctionNode, depth: int = 0) -> set[str]:
        if node is None or (isinstance(node, ast.Constant) and node.value is None):
            return {NONE}
        if depth > 4:
            return {UNKNOWN}
        if isinstance(node, ast.Tuple | ast.List):
            return {TUPLE}
        if isinstance(node, ast.IfExp):
            return self.of(node.body, fn, depth + 1) | self.of(node.orelse, fn, depth + 1)
        if isinstance(node, ast.Name):
            values = [v for names, v in _assigned(fn) if node.id in names]
            if not values:
                return {VALUE}  # a parameter returned as it came
            out: set[str] = set()
            for v in values:
                out |= self.of(v, fn, depth + 1)
            return out
        if isinstance(node, ast.Call):
            return self._call(node, fn, depth)
        return {VALUE}

    def _call(self, node: ast.Call, fn: FunctionNode, depth: int) -> set[str]:
        func = node.func
        if self.is_output_class(func, fn):
            return {OUTPUT}
        q = self.ctx.names.qualify(func)
        if q in ("builtins.tuple", "builtins.list"):
            return {TUPLE}
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            method = self.ctx.classes.method(self.cls, func.attr) if self.cls is not None else None
            if method is not None:
                return self.of_function(method, depth + 1)
            if func.attr == "forward":
                return {UNKNOWN}
            return {VALUE}  # a submodule's result
        if isinstance(func, ast.Name) and func.id in self.functions and not q:
            return self.of_function(self.functions[func.id], depth + 1)
        if isinstance(func, ast.Name) and not q:
            return {VALUE}  # a local callable: a block from a loop over a ModuleList, a lambda
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call) and self.ctx.names.qualify(func.value.func) == "builtins.super":
            return {UNKNOWN}  # the base class's method: defined elsewhere
        if q.startswith(("torch.", "numpy.", "math.")) or isinstance(func, ast.Attribute) and not q:
            return {VALUE}  # tensor math, or a method of a local value (x.reshape(...))
        return {UNKNOWN}


def _assigned(fn: FunctionNode) -> list[tuple[list[str], ast.expr]]:
    """(names, value) of each assignment in `fn` whose target is a plain name (not an unpacking)."""
    out = []
    for n in own_nodes(fn):
        if isinstance(n, ast.Assign):
            for t in n.targets:
                if isinstance(t, ast.Name):
                    out.append(([t.id], n.value))
        elif isinstance(n, ast.AnnAssign) and n.value is not None and isinstance(n.target, ast.Name):
            out.append(([n.target.id], n.value))
        elif isinstance(n, ast.NamedExpr):
            out.append(([n.target.id], n.value))
    return out
