import ast

from agent.checks.astutil import derived
from agent.checks.flow import params
from agent.checks.registry import Rule, register, walk

DEVICE_NAMES = {"device", "self.device", "self._execution_device", "execution_device"}


def _mentions(node: ast.AST, wanted: set[str]) -> bool:
    for n in walk(node):
        if isinstance(n, ast.Name) and n.id in wanted:
            return True
        if isinstance(n, ast.Attribute) and f"{getattr(n.value, 'id', '')}.{n.attr}" in wanted:
            return True
        if isinstance(n, ast.Attribute) and n.attr in ("dtype", "device") and n.attr in {w.split(".")[-1] for w in wanted}:
            return True  # `.to(prompt_embeds.dtype)`, `.to(other.device)`
    return False


def check(ctx):
    for cls in ctx.classes.all:
        if not ctx.classes.is_pipeline(cls):
            continue
        for fn in ctx.classes.methods(cls).values():
            names = {a.arg for a in params(fn)}
            if "latents" not in names or fn.name == "__call__" or not ({"device", "dtype"} & names):
                continue
            flowing = derived(fn, {"latents"})
            moved = cast = False
            for node in walk(fn):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "to":
                    recv = node.func.value
                    if not any(isinstance(n, ast.Name) and n.id in flowing for n in walk(recv)):
                        continue
                    args = [*node.args, *(k.value for k in node.keywords)]
                    moved |= any(_mentions(a, DEVICE_NAMES) for a in args)
                    cast |= any(_mentions(a, {"dtype"}) for a in args)
            need = []
            if "device" in names and not moved:
                need.append("device")
            if "dtype" in names and not cast:
                need.append("dtype")
            if need:
                arg = next(a for a in params(fn) if a.arg == "latents")
                yield arg, f"{cls.name}.{fn.name}() uses the caller's latents without moving them to the execution {' and '.join(need)}"


RULE = register(Rule(
    id="P010",
    name="pipeline-latents-cast",
    scope="pipelines",
    summary="Latents the user passes are moved to the execution device and dtype.",
    what="A pipeline method that takes `latents` together with `device`/`dtype` and never applies `.to(device=..., dtype=...)` to them.",
    why="Latents from a previous run (CPU, float32) then meet a float16 model on the GPU: a dtype error deep in the first layer, or silent float32 compute.",
    bad="if latents is not None:\n    latents = latents.to(device)",
    good="if latents is not None:\n    latents = latents.to(device=device, dtype=dtype)",
    anchor="pipelines.md#arguments",
    check=check,
    triggers=("latents",),
))
