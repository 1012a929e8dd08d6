import ast
import re

from agent.checks.registry import Rule, register, walk

# Imported blocks that carry their own checkpointing branch (UNet down/up/mid blocks, VAE encoders).
_CONTAINER = re.compile(r"(?:Down|Up|Mid)\w*Block|Encoder|Decoder|^get_(?:down|up|mid)_block")


def _reads_flag(ctx, cls: ast.ClassDef) -> bool:
    for node in walk(cls):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and node.attr == "gradient_checkpointing":
            return True
        if isinstance(node, ast.Call) and ctx.names.qualify(node.func) in ("torch.utils.checkpoint.checkpoint", "torch.utils.checkpoint.checkpoint_sequential"):
            return True
    return False


def _called(ctx, owner: ast.AST) -> set[str]:
    out = set()
    for node in ctx.inside(owner, ast.Call):
        f = node.func
        name = f.id if isinstance(f, ast.Name) else (f.attr if isinstance(f, ast.Attribute) else "")
        if name:
            out.add(name)
    return out


def _instantiated(ctx, cls: ast.ClassDef) -> set[str]:
    """Names the class calls, and those called by the same-file functions it calls (block factories)."""
    out = _called(ctx, cls)
    functions = {n.name: n for n in ctx.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for name in list(out):
        if name in functions:
            out |= _called(ctx, functions[name])
    return out


def _covered(ctx, cls: ast.ClassDef) -> bool:
    """The class or a module it builds (in this file) branches on gradient_checkpointing, or it
    builds imported block containers that carry their own branch."""
    seen, stack = set(), [cls]
    while stack:
        c = stack.pop()
        if c.name in seen:
            continue
        seen.add(c.name)
        if any(_reads_flag(ctx, x) for x in ctx.classes.lineage(c)):
            return True
        if c is cls and any(_reads_flag(ctx, sub) for sub in ctx.classes.all if sub is not cls and cls in ctx.classes.lineage(sub)):
            return True  # a base class: the subclasses that inherit the flag carry the branch
        for name in _instantiated(ctx, c):
            if name in ctx.classes.by_name:
                stack.append(ctx.classes.by_name[name])
            elif name in ctx.names.table and _CONTAINER.search(name):
                return True
    return False


def check(ctx):
    for cls in ctx.classes.all:
        for node in cls.body:
            if (
                isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_supports_gradient_checkpointing" for t in node.targets)
                and isinstance(node.value, ast.Constant) and node.value.value is True
                and not _covered(ctx, cls)
            ):
                yield node, f"{cls.name} sets _supports_gradient_checkpointing = True but neither it nor the blocks it builds branch on self.gradient_checkpointing"


RULE = register(Rule(
    id="M007",
    name="gradient-checkpointing-flag",
    scope="models",
    summary="_supports_gradient_checkpointing needs the checkpointing branch in forward.",
    what="A class that sets _supports_gradient_checkpointing = True while neither it nor any module it builds in the same file reads self.gradient_checkpointing (the flag enable_gradient_checkpointing() sets), and it builds no imported block container that could.",
    why="enable_gradient_checkpointing() then succeeds and silently does nothing: training runs out of memory with no hint why.",
    bad="_supports_gradient_checkpointing = True\n...\nfor block in self.blocks:\n    x = block(x)",
    good="for block in self.blocks:\n    if torch.is_grad_enabled() and self.gradient_checkpointing:\n        x = self._gradient_checkpointing_func(block, x)\n    else:\n        x = block(x)",
    anchor="models.md#capability-flags",
    check=check,
    triggers=("_supports_gradient_checkpointing",),
))
