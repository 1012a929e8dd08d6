"""Write a run's parity spec and run it through the sandbox."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sandbox
from agent.errors import IntegrateError
from agent.render import render
from agent.run_state import Run


def candidate_location(run: Run) -> tuple[Path, str]:
    """Import root and dotted module of the port, for either layout."""
    planned, scaffolded = run.result("plan"), run.result("scaffold")
    workspace = Path(scaffolded["workspace"])
    if planned["layout"] == "diffusers-tree":
        return workspace / "src", f"diffusers.models.{planned.get('family', 'transformers')}.{planned['module_name']}"
    return workspace, planned["module_name"]


def reference_config(analysis: dict[str, Any]) -> dict[str, Any]:
    """The constructor kwargs as the reference expects them (tuples where its defaults are tuples)."""
    tuples = set(analysis.get("tuple_args", []))
    return {k: tuple(v) if k in tuples and isinstance(v, list) else v for k, v in analysis["config_kwargs"].items()}


def _reference_kwargs_code(analysis: dict[str, Any]) -> str:
    """How the spec calls the reference constructor: the kwargs, or one configuration object."""
    obj = analysis.get("config_object")
    if not obj:
        return "CONFIG"
    built = "dict(CONFIG)" if obj["kind"] == "mapping" else "SimpleNamespace(**CONFIG)"
    return f"{{{obj['param']!r}: {built}}}"


def write_spec(run: Run, path: Path, *, reference_weights: Sequence[str] = (), converted_dir: str | None = None) -> Path:
    analysis, planned = run.result("analyze"), run.result("plan")
    root, module = candidate_location(run)
    path.write_text(render(
        "parity/spec.py.j2",
        class_name=planned["class_name"],
        spec_name=path.name,
        reference_root=run.result("resolve")["snapshot"],
        reference_module=analysis["top_class"]["module"],
        reference_class=analysis["top_class"]["name"],
        reference_weights=list(reference_weights),
        candidate_root=str(root),
        candidate_module=module,
        converted_dir=converted_dir,
        config=reference_config(analysis),
        reference_kwargs=_reference_kwargs_code(analysis),
        tolerance=planned["tolerance"],
        inputs=analysis["inputs"],
    ))
    return path


def run_parity_sandboxed(
    spec: Path,
    *,
    workspace: Path,
    ro_paths: Sequence[Path] = (),
    device: str = "cpu",
    dtype: str = "float32",
    seed: int = 0,
    limits: sandbox.Limits | None = None,
) -> tuple[dict[str, Any] | None, sandbox.SandboxResult]:
    """Returns (report or None when it could not run, sandbox result)."""
    workspace.mkdir(parents=True, exist_ok=True)
    report = workspace / "parity.json"
    report.unlink(missing_ok=True)
    (workspace / "parity_layers.png").unlink(missing_ok=True)
    res = sandbox.run(
        [sys.executable, "-m", "sandbox.parity", str(spec.resolve()), "--device", device, "--dtype", dtype,
         "--seed", str(seed), "--json", str(report), "--plot", str(workspace / "parity_layers.png")],
        workspace,
        ro_paths=[spec.resolve().parent, *ro_paths],
        limits=limits,
    )
    (workspace / "parity.log").write_text(res.stdout + "\n--- stderr\n" + res.stderr)
    if res.reason == "exit" and res.returncode in (0, 1) and report.exists():
        payload = json.loads(report.read_text())
        payload["sandbox"] = {"isolation": res.isolation, "notes": res.isolation_notes, "wall_s": res.wall_s, "peak_rss_mb": res.peak_rss_mb}
        report.write_text(json.dumps(payload, indent=2))
        return payload, res
    return None, res


def require_report(report: dict[str, Any] | None, res: sandbox.SandboxResult, what: str) -> dict[str, Any]:
    if report is None:
        detail = res.one_line_error() if res.reason == "exit" else f"stopped by the sandbox ({res.reason} after {res.wall_s}s)"
        raise IntegrateError(f"{what} could not run: {detail}")
    return report
