import ast

from agent.checks.flow import Scope, body_without_docstring, params, uses, validation_only
from agent.checks.registry import Rule, register


def _abstract(fn) -> bool:
    """A body that only documents, passes or raises (an interface, not an implementation)."""
    body = body_without_docstring(fn)
    return not body or validation_only(body) or all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) for s in body)


def _callbacks(ctx) -> set[str]:
    """Functions passed around as values (`forward_op=_flash_forward_op`): they implement a fixed
    calling convention, so a parameter they do not need is part of that convention."""
    called = {id(n.func) for n in ctx.of_type(ast.Call)}
    return {
        n.id for n in ctx.of_type(ast.Name)
        if isinstance(n.ctx, ast.Load) and id(n) not in called
    }


NOT_A_MASK = {"len", "length", "ratio", "size", "id", "ids", "value", "token", "prob", "probability", "type", "mode", "dim", "kwargs"}


def _is_mask(name: str) -> bool:
    """A tensor of masks by its name (not a flag about masks, not a mask length or ratio)."""
    parts = name.lower().split("_")
    return "mask" in name.lower() and not name.startswith(("return_", "use_", "output_", "_")) and parts[-1] not in NOT_A_MASK


def _registered(fn) -> bool:
    """Registered in a registry by decorator (`@AttentionBackendRegistry.register(...)`): it
    implements the registry's calling convention."""
    return any(
        isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "register"
        for d in fn.decorator_list
    )


def check(ctx):
    callbacks = None
    owners = ctx.classes.owners
    legacy = ctx.classes.defines_legacy_attention()
    scopes: dict = {}
    for fn in ctx.of_type(ast.FunctionDef, ast.AsyncFunctionDef):
        masks = [a.arg for a in params(fn) if _is_mask(a.arg)]
        if not masks or fn.name.lstrip("_").startswith(("check", "validate")) or _abstract(fn) or _registered(fn):
            continue
        if fn.name == "__init__" and any("register_to_config" in ast.unparse(d) for d in fn.decorator_list):
            continue  # config arguments are read later through self.config
        owner = owners.get(id(fn))
        if id(owner) not in scopes:
            scopes[id(owner)] = Scope.of(ctx, owner)
        scope = scopes[id(owner)]
        # a function that reads a mask's dtype or device to build its own mask is handling it
        verdicts = uses(fn, masks, scope, metadata_is_use=True)
        for name in masks:
            if not verdicts[name].used:
                if callbacks is None:
                    callbacks = _callbacks(ctx)
                if fn.name in callbacks or (legacy and fn.name == "__call__"):
                    break
                arg = next(a for a in params(fn) if a.arg == name)
                yield arg, f"{fn.name}() accepts {name!r} but it is {verdicts[name].why}: callers' masks are silently dropped"


RULE = register(Rule(
    id="M004",
    name="unused-mask",
    scope="models",
    summary="A declared mask argument must reach the computation.",
    what="A function parameter named like a mask whose value never reaches a call or a returned value: never read, only validated, overwritten, stored and never read, or passed only to a helper that ignores it.",
    why="Padding masks that are accepted and ignored give wrong results for batched, variable-length inputs, with no error anywhere.",
    bad="def forward(self, x, attention_mask=None):\n    if attention_mask is not None:\n        attention_mask = attention_mask.bool()\n    return self.attn(x)",
    good="def forward(self, x, attention_mask=None):\n    return self.attn(x, attention_mask=attention_mask)",
    anchor="models.md#masks",
    check=check,
    triggers=("mask",),
))
