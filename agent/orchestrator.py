"""The flow of a run: eleven stages in order, each recorded in run.json, resumable."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from agent.errors import IntegrateError
from agent.run_state import Run
from agent.stages.analyze import analyze
from agent.stages.blocks import blocks
from agent.stages.conventions import conventions
from agent.stages.convert import convert
from agent.stages.plan import plan
from agent.stages.port import port
from agent.stages.publish import publish
from agent.stages.refine import refine
from agent.stages.resolve import resolve
from agent.stages.scaffold import scaffold
from agent.stages.verify import verify
from sandbox.runner import IsolationRefused

STAGES: list[tuple[str, Callable[[Run], dict[str, Any]]]] = [
    ("resolve", resolve),
    ("analyze", analyze),
    ("plan", plan),
    ("scaffold", scaffold),
    ("port", port),
    ("blocks", blocks),
    ("conventions", conventions),
    ("refine", refine),
    ("convert", convert),
    ("verify", verify),
    ("publish", publish),
]


def _describe(name: str, result: dict[str, Any]) -> str:
    """One line of what a stage produced, for the progress log."""
    if name == "resolve":
        return f"{result['kind']} source, {len(result['code_files'])} code files, {sum(w['tensors'] for w in result['weights'])} tensors in {len(result['weights'])} weight files"
    if name == "analyze":
        return f"{result['top_class']['name']} ({result['parameters']:,} parameters), {len(result['module_classes'])} module classes"
    if name == "plan":
        return f"{result['class_name']} in {result['model_path']} ({result['layout']})"
    if name == "scaffold":
        return f"workspace {result['workspace']}" + (f", registered in {len(result['registered_in'])} __init__ files" if result["registered_in"] else "")
    if name == "port":
        p = result["parity"]
        c = result["codemods"]
        return f"structural port ({len(c['converted'])} calls rewritten, {len(c['left'])} left), parity max abs {p['max_abs_diff']:.2e}"
    if name == "conventions":
        if result["status"] == "reverted":
            return f"reverted: {result['attempts'][-1].get('why', 'parity failed')}"
        g = result["gradient_checkpointing"]
        grads = f", checkpointing {'proven' if g['proven'] else 'not proven'}" if "_supports_gradient_checkpointing" in result["flags"] or g.get("max_abs_diff") is not None else ""
        left = f" ({', '.join(result['groups_left_out'])} left out)" if result["groups_left_out"] else ""
        return f"{len(result['groups_applied'])}/{len(result['groups_applied']) + len(result['groups_left_out'])} groups{left}, parity max abs {result['parity']['max_abs_diff']:.2e}{grads}"
    if name == "blocks":
        if result["status"] == "skipped":
            return f"skipped: {result['reason']}"
        classes, functions = len(result["substituted"]), sum(f.get("replaced", False) for f in result["functions"])
        done = f"{classes} class{'es' * (classes != 1)} and {functions} function{'s' * (functions != 1)} -> diffusers blocks"
        return f"{result['status']}: {done}, {len(result['custom'])} custom; {result['share']['diffusers_share']:.0%} of parameters in diffusers blocks"
    if name == "refine":
        return f"{result['status']}: {result['reason']}"
    if name == "convert":
        return f"{result['tensors']} tensors -> {', '.join(result['files'])}; reload {'identical' if result['reload_equal'] else 'DIFFERENT'}"
    if name == "verify":
        p = result["parity"]
        return f"parity {'passed' if p['passed'] else 'FAILED'} (max abs {p['max_abs_diff']:.2e}, cosine {p['cosine']:.8f}); {len(result['findings'])} convention findings"
    if name == "publish":
        return f"PR body {result['pr_body']}"
    return ""


def execute(run: Run, console: Console) -> None:
    """Run every stage not yet done. Raises IntegrateError (recorded in run.json) on failure."""
    for name, stage in STAGES:
        if run.is_done(name):
            console.print(f"[dim]  = {name:<9} already done[/dim]")
            continue
        run.start_stage(name)
        start = time.monotonic()
        try:
            with console.status(f"[bold]{name}[/bold] ..."):
                result = stage(run)
        except IsolationRefused as exc:  # nothing ran; recorded like any other error, then reported once
            error = IntegrateError(str(exc))
            run.fail_stage(name, error.message, time.monotonic() - start)
            console.print(f"[red]  x {name:<9}[/red] {error.message}")
            raise error from None
        except IntegrateError as exc:
            run.fail_stage(name, exc.message, time.monotonic() - start)
            console.print(f"[red]  x {name:<9}[/red] {exc.message}")
            raise
        except KeyboardInterrupt:
            run.fail_stage(name, "interrupted", time.monotonic() - start)
            raise
        elapsed = time.monotonic() - start
        run.finish_stage(name, result, elapsed)
        console.print(f"[green]  + {name:<9}[/green] {elapsed:5.1f}s  {_describe(name, result)}")
    run.data["status"] = "passed"
    run.data.pop("error", None)
    run.save()


def summary(run: Run) -> dict[str, Any]:
    """The run summary printed by --json."""
    data = run.data
    out: dict[str, Any] = {
        "run_id": data["id"],
        "run_dir": str(run.dir),
        "status": data["status"],
        "stage_reached": data["stage_reached"],
        "error": data.get("error"),
        "stages": {k: {"status": v["status"], "seconds": v.get("seconds")} for k, v in data["stages"].items()},
    }
    if run.is_done("verify"):
        v = run.result("verify")
        out["parity"] = v["parity"]
        out["findings"] = len(v["findings"])
    if run.is_done("refine"):
        out["refinement"] = run.result("refine")
    if run.is_done("publish"):
        out["publish"] = run.result("publish")
    return out
