import ast

from agent.checks.astutil import dotted
from agent.checks.registry import Rule, register
from agent.checks.rules.pipeline_no_grad import is_pipeline_call


def _mentions_timesteps(node: ast.AST) -> bool:
    return any(
        (isinstance(n, ast.Name) and "timesteps" in n.id) or (isinstance(n, ast.Attribute) and "timesteps" in n.attr)
        for n in ast.walk(node)
    )


def _steps_a_scheduler(loop: ast.For) -> bool:
    """A denoising loop: its body calls a scheduler's step (other loops over timesteps just count)."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "step" for n in ast.walk(loop))


def _uses_progress_bar(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and dotted(n.func) == "self.progress_bar" for n in ast.walk(node))


def _loops(block: list[ast.stmt], under_bar: bool):
    for stmt in block:
        if isinstance(stmt, ast.With) and any(_uses_progress_bar(item.context_expr) for item in stmt.items):
            yield from _loops(stmt.body, True)
            continue
        if (
            isinstance(stmt, ast.For)
            and _mentions_timesteps(stmt.iter)
            and _steps_a_scheduler(stmt)
            and not under_bar
            and not _uses_progress_bar(stmt.iter)
        ):
            yield stmt
        for field in ("body", "orelse", "finalbody"):
            if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield from _loops(getattr(stmt, field, []) or [], under_bar)


def check(ctx):
    if not is_pipeline_call(ctx):
        return
    for loop in _loops(ctx.tree.body[0].body, False):
        yield loop, f"{ctx.class_name}.__call__ runs its denoising loop without self.progress_bar"


RULE = register(Rule(
    id="P006",
    name="pipeline-progress-bar",
    scope="pipelines",
    summary="The denoising loop runs under self.progress_bar.",
    what="A for loop over timesteps in __call__ that is neither inside `with self.progress_bar(...)` nor iterating self.progress_bar(...).",
    why="Users and set_progress_bar_config() rely on it; a bare loop gives no progress and ignores the configuration.",
    bad="for i, t in enumerate(timesteps):\n    ...",
    good="with self.progress_bar(total=num_inference_steps) as progress_bar:\n    for i, t in enumerate(timesteps):\n        ...\n        progress_bar.update()",
    anchor="pipelines.md#progress",
    check=check,
    kind="call",
    triggers=("timesteps",),
))
