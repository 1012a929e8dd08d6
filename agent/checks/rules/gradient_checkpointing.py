import ast
import re

from agent.checks.astutil import class_attr, classes, imports_sibling_blocks
from agent.checks.registry import Rule, register


def _reads_flag(cls: ast.ClassDef) -> bool:
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            if node.attr in ("gradient_checkpointing", "_gradient_checkpointing_func"):
                return True
    return False


_FLAG_TRUE = re.compile(r"_supports_gradient_checkpointing\s*=\s*True")
_BRANCH = re.compile(r"if[^\n]*\.gradient_checkpointing\b|\._gradient_checkpointing_func\(")


# ... recognised here also by the module they come from (unet_2d_blocks, attention, ...)
_BLOCK_MODULE_IMPORT = re.compile(r"^\s*from\s+\.+[\w.]*(?:block|attention|resnet|transformer)[\w.]*\s+import", re.M)


def might_fire(source: str) -> bool:
    return (
        _FLAG_TRUE.search(source) is not None
        and _BRANCH.search(source) is None
        # blocks imported from other diffusers modules carry their own checkpointing branches
        and _BLOCK_MODULE_IMPORT.search(source) is None
        and not imports_sibling_blocks(source)
    )


def check(ctx):
    # transformers-style models keep the branch in a submodule class of the same file
    if any(_reads_flag(cls) for cls in classes(ctx.tree)):
        return
    for cls in classes(ctx.tree):
        value = class_attr(cls, "_supports_gradient_checkpointing")
        if isinstance(value, ast.Constant) and value.value is True:
            yield value, f"{cls.name} sets _supports_gradient_checkpointing = True but its forward has no gradient-checkpointing branch"


RULE = register(Rule(
    id="M007",
    name="gradient-checkpointing-flag",
    scope="models",
    summary="_supports_gradient_checkpointing needs the checkpointing branch in forward.",
    what="A class that sets _supports_gradient_checkpointing = True but never reads self.gradient_checkpointing (or calls self._gradient_checkpointing_func).",
    why="enable_gradient_checkpointing() then succeeds and silently does nothing: training runs out of memory with no hint why.",
    bad="_supports_gradient_checkpointing = True\n...\nfor block in self.blocks:\n    x = block(x)",
    good="for block in self.blocks:\n    if torch.is_grad_enabled() and self.gradient_checkpointing:\n        x = self._gradient_checkpointing_func(block, x)\n    else:\n        x = block(x)",
    anchor="models.md#capability-flags",
    check=check,
    prefilter=might_fire,
))
