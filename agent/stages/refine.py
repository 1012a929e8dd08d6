"""refine: the LLM turns the structural port into idiomatic diffusers code, parity green at every
kept step. Skipped (and said so) when no LLM is configured; never reported as passed then."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sandbox
from agent.errors import IntegrateError
from agent.llm.backends import DEFAULT_MODEL, AnthropicBackend, Backend, BackendError, ScriptedBackend
from agent.llm.cost import Usage, load_prices, prices_for
from agent.llm.env import RefineEnv
from agent.llm.limits import LoopLimits
from agent.llm.loop import Outcome, RefineLoop
from agent.llm.trajectory import Trajectory
from agent.parity_run import candidate_location, parity_paths, run_parity_sandboxed, write_spec
from agent.reference_weights import reference_weight_files
from agent.render import render
from agent.run_state import Run
from agent.skills import load_skills, skills_index

PARITY_SIDES = 3  # sandboxed runs in one parity check, each under the same limits


class RefinementFailed(IntegrateError):
    def __init__(self, message: str):
        super().__init__(message, exit_code=1)


def choose_backend(llm: str) -> tuple[str, str | None]:
    """(backend name or "skipped", why skipped). `auto` is anthropic only when a key is set."""
    if llm == "none":
        return "skipped", "--llm none: structural port only"
    if llm == "auto":
        if not os.environ.get("ANTHROPIC_API_KEY"):
            return "skipped", "no ANTHROPIC_API_KEY set (--llm auto): structural port only"
        return "anthropic", None
    return llm, None


def make_backend(name: str, model: str, timeout: float | None = None) -> Backend:
    try:
        if name.startswith("scripted:"):
            return ScriptedBackend(name.removeprefix("scripted:"))
        return AnthropicBackend(model, **({"timeout": timeout} if timeout else {}))
    except BackendError as exc:
        raise IntegrateError(f"--llm {name}: {exc}") from None


def _session_parts(run: Run, env: RefineEnv, model_rel: str) -> tuple[list[dict[str, Any]], str]:
    planned = run.result("plan")
    verdict = env.parity()
    system = render(
        "refine/system.md.j2",
        reference_class=planned["reference_class"], class_name=planned["class_name"], model_file=model_rel,
        plan=run.path("plan.md").read_text(), skills_index=skills_index(env.skills),
    )
    reports = render("refine/reports.md.j2", parity=verdict.text, checks=env.checks_text(), model_file=model_rel)
    # Both blocks are fixed for the session (a resume reuses them from the trajectory), so the
    # backend's breakpoint on the last one caches the whole system prompt.
    return [{"type": "text", "text": system}, {"type": "text", "text": reports}], render("refine/task.md.j2", model_file=model_rel)


def refine(run: Run) -> dict[str, Any]:
    settings = run.inputs.get("refine") or {}
    backend_name, why = choose_backend(run.inputs.get("llm", "auto"))
    if backend_name == "skipped":
        return {"status": "skipped", "reason": why}
    model = settings.get("model") or DEFAULT_MODEL
    prices = prices_for(load_prices(settings.get("prices")), model)  # scripted sessions are priced too (their usage is given)
    limits = LoopLimits(**{k: v for k, v in settings.get("limits", {}).items() if v is not None})
    backend = make_backend(backend_name, model, settings.get("timeout"))

    resolved, scaffolded = run.result("resolve"), run.result("scaffold")
    workspace = Path(scaffolded["workspace"])
    model_file = Path(scaffolded["model_file"])
    workdir = run.path("refine")
    workdir.mkdir(exist_ok=True)
    weights = [str(p) for p in reference_weight_files(run)]
    spec = write_spec(run, workdir / "spec" / "parity_spec.py", reference_weights=weights)
    device = run.inputs.get("device", "cpu")

    def parity(timeout_s: float | None = None) -> dict[str, Any]:
        # what is left of --max-wall, shared by the sides that run one after another (reference, mapping, candidate)
        limits = sandbox.Limits(wall_s=min(timeout_s / PARITY_SIDES, sandbox.Limits().wall_s)) if timeout_s else None
        return run_parity_sandboxed(spec, workdir / "parity", parity_paths(run, weights), device=device, limits=limits)

    import_root, _ = candidate_location(run)
    env = RefineEnv(
        workspace, skills=load_skills(run.inputs.get("target")), parity=parity, check_files=[model_file],
        scratch=workdir / "python", ro_paths=[Path(resolved["snapshot"])], python_path=import_root,
    )
    trajectory = Trajectory(workdir / "trajectory.jsonl")
    events = trajectory.events()
    if events and events[-1]["type"] == "end" and events[-1]["outcome"]["status"] == "reverted":
        # resuming a session that failed: start a new one, keeping the old record beside it
        n = len(list(workdir.glob("trajectory.*.jsonl"))) + 1
        trajectory.path.rename(workdir / f"trajectory.{n}.jsonl")
        events = []
    model_rel = str(model_file.relative_to(workspace))
    system, task = _session_parts(run, env, model_rel) if not events else ([], "")
    loop = RefineLoop(backend, env, trajectory, limits, Usage(prices), system, task,
                      meta={"backend": backend_name.split(":")[0], "model": model})
    outcome = loop.run()
    result = _result(outcome, trajectory.path, backend_name, model)
    run.write_json("refine/summary.json", result)
    if outcome.status == "paused":
        raise IntegrateError(f"refinement paused: {outcome.reason}; the conversation is saved in {trajectory.path} and `integrate resume` continues it")
    if outcome.status == "reverted":
        tried = "; ".join(outcome.tried[-6:]) or "no edits"
        raise RefinementFailed(
            f"refinement stopped at the {outcome.reason} with parity failing ({outcome.parity}); the workspace is back at the last "
            f"green checkpoint {outcome.final_commit[:10]}; tried: {tried}; {_cost_line(outcome)}; trajectory: {trajectory.path}"
        )
    return result


def _cost_line(outcome: Outcome) -> str:
    u = outcome.usage
    return f"{u['turns']} turns, {u['total_tokens']:,} tokens, cache hit {u['cache_hit_ratio']:.0%}, ${u['dollars']:.4f}"


def _result(outcome: Outcome, trajectory: Path, backend: str, model: str) -> dict[str, Any]:
    reasons = {
        "refined": f"parity passed after the model's changes ({_cost_line(outcome)})",
        "stopped": f"stopped at the {outcome.reason}; the workspace is at a green checkpoint ({_cost_line(outcome)})",
    }
    return {
        "status": outcome.status,
        "reason": reasons.get(outcome.status, outcome.reason),
        "stop": outcome.reason,
        "summary": outcome.summary,
        "backend": backend.split(":")[0],
        "model": model,
        "usage": outcome.usage,
        "checkpoints": outcome.checkpoints,
        "final_commit": outcome.final_commit,
        "tried": outcome.tried,
        "parity": outcome.parity,
        "trajectory": str(trajectory),
    }
