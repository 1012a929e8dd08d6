import ast

from agent.checks.astutil import dotted
from agent.checks.pipelines import torch_pipeline_calls
from agent.checks.registry import Rule, register, walk


def _mentions_timesteps(node: ast.AST) -> bool:
    return any(
        (isinstance(n, ast.Name) and "timesteps" in n.id) or (isinstance(n, ast.Attribute) and "timesteps" in n.attr)
        for n in walk(node)
    )


def _steps_a_scheduler(loop: ast.For) -> bool:
    """A denoising loop: its body calls a scheduler's step (other loops over timesteps just count)."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "step" for n in walk(loop))


def _uses_progress_bar(node: ast.AST) -> bool:
    """`self.progress_bar(...)`, or a bar built from the pipeline's own progress-bar configuration."""
    for n in walk(node):
        if isinstance(n, ast.Call) and dotted(n.func) == "self.progress_bar":
            return True
        if isinstance(n, (ast.Name, ast.Attribute, ast.Constant)):
            text = n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else str(n.value)
            if "progress_bar_config" in text:
                return True
    return False


def _loops(block: list[ast.stmt], under_bar: bool):
    for stmt in block:
        if isinstance(stmt, (ast.With, ast.AsyncWith)) and any(_uses_progress_bar(item.context_expr) for item in stmt.items):
            yield from _loops(stmt.body, True)
            continue
        if (
            isinstance(stmt, (ast.For, ast.AsyncFor))
            and _mentions_timesteps(stmt.iter)
            and _steps_a_scheduler(stmt)
            and not under_bar
            and not _uses_progress_bar(stmt.iter)
        ):
            yield stmt
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _loops(getattr(stmt, field, []) or [], under_bar)
        for handler in getattr(stmt, "handlers", []) or []:
            yield from _loops(handler.body, under_bar)


def check(ctx):
    for cls, call in torch_pipeline_calls(ctx):
        for loop in _loops(call.body, False):
            yield loop, f"{cls.name}.__call__ runs its denoising loop without self.progress_bar"


RULE = register(Rule(
    id="P006",
    name="pipeline-progress-bar",
    scope="pipelines",
    summary="The denoising loop runs under self.progress_bar.",
    what="A for loop over timesteps in __call__ that steps a scheduler and is neither inside `with self.progress_bar(...)` nor iterating self.progress_bar(...).",
    why="Users and set_progress_bar_config() rely on it; a bare loop gives no progress and ignores the configuration.",
    bad="for i, t in enumerate(timesteps):\n    ...",
    good="with self.progress_bar(total=num_inference_steps) as progress_bar:\n    for i, t in enumerate(timesteps):\n        ...\n        progress_bar.update()",
    anchor="pipelines.md#progress",
    check=check,
    triggers=("timesteps",),
))
