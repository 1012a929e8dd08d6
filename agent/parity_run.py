"""Write a run's parity spec and run it: each side in its own sandbox, the verdict here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sandbox
from agent.errors import IntegrateError
from agent.render import render
from agent.run_state import Run
from sandbox import safe_files
from sandbox.mapping import WeightMapping
from sandbox.parity.errors import ParityError
from sandbox.parity.host import SandboxLog, SidePaths, fresh_seed, run_parity, sandboxed_launcher

__all__ = ["SidePaths", "candidate_location", "parity_paths", "reference_config", "run_parity_sandboxed", "write_spec"]


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


def parity_paths(run: Run, reference_weights: Sequence[str | Path] = (), converted_dir: str | Path | None = None) -> SidePaths:
    """What each side of this run's parity may read: the reference side the snapshot and the
    reference checkpoint, the candidate side the port (and the converted folder)."""
    root, _ = candidate_location(run)
    candidate = [Path(run.result("scaffold")["workspace"]), root]
    if converted_dir:
        candidate.append(Path(converted_dir))
    return SidePaths(
        reference=[Path(run.result("resolve")["snapshot"]), *sorted({Path(p).parent for p in reference_weights})],
        candidate=sorted(set(candidate)),
    )


def rerun_command(spec: Path, paths: SidePaths) -> str:
    flags = [f"--reference-path {p}" for p in paths.reference] + [f"--candidate-path {p}" for p in paths.candidate]
    return " ".join(["integrate parity", spec.name, *flags])


def write_spec(run: Run, path: Path, *, reference_weights: Sequence[str] = (), converted_dir: str | None = None) -> Path:
    analysis, planned = run.result("analyze"), run.result("plan")
    root, module = candidate_location(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    safe_files.write_text(path.parent, path.name, render(
        "parity/spec.py.j2",
        class_name=planned["class_name"],
        spec_name=path.name,
        rerun_command=rerun_command(path, parity_paths(run, reference_weights, converted_dir)),
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
    work: Path,
    paths: SidePaths,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    seed: int = 0,
    fresh: bool = True,
    mapping: WeightMapping | None = None,
    limits: sandbox.Limits | None = None,
    plot: bool = True,
) -> dict[str, Any]:
    """The parity report, its sides each sandboxed. Raises IntegrateError (exit 2) when it could
    not run. `fresh` adds a second input set from a seed drawn now, so no port can have been
    fitted to the inputs it is judged on. Writes parity.json (and parity_layers.png) into `work`,
    a folder no side can write."""
    spec = spec.resolve()
    work = work.resolve()
    for visible in (spec.parent, *paths.reference, *paths.candidate, *paths.shared):
        if work == visible.resolve() or visible.resolve() in work.parents:
            raise IntegrateError(f"parity work folder {work} must not lie inside a folder the sides can read ({visible})")
    record = SandboxLog()
    launch = sandboxed_launcher(paths, work / "logs", device=device, dtype=dtype, limits=limits, record=record)
    seeds = [seed, fresh_seed()] if fresh else [seed]
    try:
        report = run_parity(spec, work / "sides", launch, seeds=seeds, device=device, dtype=dtype, mapping=mapping)
    except ParityError as exc:
        raise IntegrateError(f"parity could not run: {exc}") from None
    report["sandbox"] = {"isolation": record.isolation, "notes": record.notes, "wall_s": record.wall_s,
                         "peak_rss_mb": record.peak_rss_mb, "sides": record.phases}
    report = jsonable(report)
    safe_files.write_text(work, "parity.json", json.dumps(report, indent=2))
    if plot:
        from sandbox.parity.plot import layer_plot_png

        safe_files.write_bytes(work, "parity_layers.png", layer_plot_png(report["layers"], report["tolerance"]["max_abs"]))
    return report


def jsonable(value: Any) -> Any:
    """Non-finite floats as strings, so the report stays valid JSON."""
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
