"""Write a run's parity spec and run it: each side in its own sandbox, the verdict here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sandbox
from agent.errors import IntegrateError
from agent.layouts import model_module
from agent.reference_weights import weight_names_and_roots
from agent.render import render
from agent.run_state import Run
from sandbox import safe_files
from sandbox.config_values import REBUILD_FUNCTION, rebuild_source
from sandbox.mapping import WeightMapping
from sandbox.parity.errors import ParityError
from sandbox.parity.host import SandboxLog, SidePaths, fresh_seed, run_parity, sandboxed_launcher, side_env

__all__ = [
    "SidePaths", "candidate_config", "candidate_location", "forward_renames", "parity_paths", "port_config", "reference_config",
    "run_parity_sandboxed", "side_env", "write_spec",
]


def candidate_location(run: Run) -> tuple[Path, str]:
    """Import root and dotted module of the port's model file, for a checkout or a standalone
    port, flat file or model folder (agent/layouts.py)."""
    planned, scaffolded = run.result("plan"), run.result("scaffold")
    workspace = Path(scaffolded["workspace"])
    return (workspace / "src" if planned["layout"] == "diffusers-tree" else workspace), model_module(planned)


def reference_config(analysis: dict[str, Any]) -> dict[str, Any]:
    """The constructor kwargs as the reference expects them (tuples where its defaults are tuples)."""
    tuples = set(analysis.get("tuple_args", []))
    return {k: tuple(v) if k in tuples and isinstance(v, list) else v for k, v in analysis["config_kwargs"].items()}


def port_config(analysis: dict[str, Any]) -> dict[str, Any]:
    """The structural port's constructor kwargs: the reference's, with the arguments the port
    renamed (analysis "port_renames": names a ModelMixin would shadow) under their new names."""
    renames = analysis.get("port_renames") or {}
    return {renames.get(k, k): v for k, v in reference_config(analysis).items()}


def candidate_config(run: Run) -> dict[str, Any]:
    """The port's constructor kwargs: the reference config, under the names the port stage and
    the conventions stage (when it ran) gave the port's arguments."""
    conv = run.result("conventions") if run.is_done("conventions") else {}
    return conv.get("candidate_config") or port_config(run.result("analyze"))


def forward_renames(run: Run) -> dict[str, str]:
    """Reference forward argument -> the port's, when the conventions stage renamed them."""
    conv = run.result("conventions") if run.is_done("conventions") else {}
    return dict(conv.get("forward_renames") or {})


def _reference_kwargs_code(analysis: dict[str, Any]) -> str:
    """How the spec calls the reference constructor: the kwargs (dataclasses rebuilt from the
    reference's own classes), or one configuration object."""
    obj = analysis.get("config_object")
    if analysis.get("config_dataclasses"):
        return f"{REBUILD_FUNCTION}(CONFIG, {{n: load(paths[0], m, n) for n, m in REFERENCE_DATACLASSES.items()}})"
    if not obj:
        return "CONFIG"
    built = "dict(CONFIG)" if obj["kind"] == "mapping" else "SimpleNamespace(**CONFIG)"
    return f"{{{obj['param']!r}: {built}}}"


def parity_paths(run: Run, reference_weights: Sequence[str | Path] = (), converted_dir: str | Path | None = None) -> SidePaths:
    """What each side of this run's parity may read: the reference side the snapshot (first: the
    spec imports the reference from there) and the checkpoint's folders, the candidate side the
    port's import root (first), and the converted folder."""
    root, _ = candidate_location(run)
    _, weight_roots = weight_names_and_roots(run, [Path(p) for p in reference_weights]) if reference_weights else ([], [])
    snapshot = Path(run.result("resolve")["snapshot"])
    candidate = [root] + ([Path(converted_dir)] if converted_dir else [])
    return SidePaths(reference=[snapshot, *(r for r in weight_roots if r != snapshot)], candidate=candidate)


def spec_context(
    run: Run,
    spec_name: str,
    *,
    reference_weights: Sequence[str] = (),
    converted_dir: str | None = None,
    candidate_kwargs: dict[str, Any] | None = None,
    renamed_inputs: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the spec template is rendered from: data only (the manifest records it, and
    `integrate verify` renders the spec again from it instead of trusting a spec in a branch).
    The candidate is built from `candidate_kwargs` and called with `renamed_inputs` applied to
    the reference's forward arguments (by default: what the conventions stage recorded, nothing
    before it ran)."""
    analysis, planned = run.result("analyze"), run.result("plan")
    _, module = candidate_location(run)
    names, _ = weight_names_and_roots(run, [Path(p) for p in reference_weights]) if reference_weights else ([], [])
    return {
        "class_name": planned["class_name"],
        "spec_name": spec_name,
        "reference_module": analysis["top_class"]["module"],
        "reference_class": analysis["top_class"]["name"],
        "reference_weight_files": names,
        "candidate_module": module,
        "saved": bool(converted_dir),
        "config": analysis["config_kwargs"],
        "tuple_args": analysis.get("tuple_args", []),
        "config_object": analysis.get("config_object"),
        "config_dataclasses": (analysis.get("config_dataclasses") or {}).get("classes"),
        "tolerance": planned["tolerance"],
        "inputs": analysis["inputs"],
        "candidate_config": candidate_config(run) if candidate_kwargs is None else candidate_kwargs,
        "forward_renames": forward_renames(run) if renamed_inputs is None else renamed_inputs,
    }


def render_spec(context: dict[str, Any]) -> str:
    config_object = context.get("config_object")
    config = reference_config({"config_kwargs": context["config"], "tuple_args": context.get("tuple_args", [])})
    return render(
        "parity/spec.py.j2",
        **{k: v for k, v in context.items() if k not in ("config", "tuple_args", "config_object", "candidate_config", "forward_renames", "config_dataclasses")},
        reference_dataclasses=context.get("config_dataclasses"),
        rebuild_source=rebuild_source if context.get("config_dataclasses") else "",
        config=config,
        candidate_config=context.get("candidate_config") or config,
        forward_renames=context.get("forward_renames") or {},
        reference_kwargs=_reference_kwargs_code({"config_object": config_object, "config_dataclasses": context.get("config_dataclasses")}),
    )


def write_spec(
    run: Run,
    path: Path,
    *,
    reference_weights: Sequence[str] = (),
    converted_dir: str | None = None,
    candidate_kwargs: dict[str, Any] | None = None,
    renamed_inputs: dict[str, str] | None = None,
) -> Path:
    """A spec that names no folder (it finds everything under the paths each side is given), so
    the same file runs in this run, in a PR branch and in a maintainer's clone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    context = spec_context(run, path.name, reference_weights=reference_weights, converted_dir=converted_dir,
                           candidate_kwargs=candidate_kwargs, renamed_inputs=renamed_inputs)
    safe_files.write_text(path.parent, path.name, render_spec(context))
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
