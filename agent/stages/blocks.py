"""blocks: the structural port's hand-written modules replaced by diffusers' own building blocks,
each replacement proven before it is written (docs/blocks.md).

Starts from the port's commit. A sandboxed job runs the reference once on the run's seeded
inputs, records what each reference module received and returned, and runs every candidate
block of the library (agent/porting/blocks) alone on those inputs; a block is kept only when it
is exact within the port tolerance on every recorded call. The codemod writes the proven ones
into the model file, full-model parity runs, and the result is committed on its own
("Use diffusers blocks: ..."). When full parity fails, substitutions are dropped one at a time
(the one holding the first diverging module first) until it passes; when none survives, the
file is back at the port's commit. Structural and behavioural changes never share a commit.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import agent.porting.blocks as library
from agent.errors import IntegrateError
from agent.gitsafe import Git
from agent.parity_run import candidate_location, parity_paths, run_parity_sandboxed, side_env, write_spec
from agent.porting.blocks.decide import ClassDecision, FunctionDecision, Malformed, decide, module_tree
from agent.porting.formatting import format_file
from agent.porting.substitute import ClassPlan, FunctionPlan, Outcome, substitute
from agent.reference_weights import reference_weight_files
from agent.run_state import Run
from agent.sandboxed import run_job
from agent.workspace import commit_all
from sandbox.loading import module_name_for

COMMIT_PREFIX = "Use diffusers blocks"
MAX_CALLS = 2  # recorded calls per module instance (each must be exact)


def blocks(run: Run) -> dict[str, Any]:
    resolved, analysis, planned, scaffolded, ported = (run.result(s) for s in ("resolve", "analyze", "plan", "scaffold", "port"))
    workspace = Path(scaffolded["workspace"])
    model_path = Path(ported["model_file"])
    repo = Git.for_workspace(workspace)
    _back_to_port(repo, ported["commit"], model_path)
    workdir = run.path("blocks")
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir()
    weights = [str(p) for p in reference_weight_files(run)]
    spec = write_spec(run, workdir / "spec" / "parity_spec.py", reference_weights=weights)
    tolerance = float(planned["tolerance"]["max_abs"])

    base = {"base_commit": ported["commit"], "tolerance": tolerance, "commit": ported["commit"], "parity_runs": 0}
    renamed = {(r["module"], r["from"]): r["to"] for r in ported["codemods"].get("renamed", []) if isinstance(r, dict)}
    try:  # without a proof nothing is replaced: the port stays as it was committed, and the run goes on
        proof = _prove(run, workdir, spec, weights, tolerance)
        classes, functions = decide(proof, tolerance, renamed, skip={planned["reference_class"], analysis["top_class"]["name"]},
                                    source=model_path.read_text(), top=planned["class_name"])
        tree = module_tree(proof, renamed, planned["class_name"])
    except (IntegrateError, Malformed) as exc:
        why = exc.message if isinstance(exc, IntegrateError) else f"the block proof left a malformed result: {exc}"
        return {**base, **_report([], [], set(), {}, {}, {}), "status": "skipped", "reason": why}
    base["proof_seconds"] = proof.get("seconds")
    proven_classes = [c for c in classes if c.proven]
    proven_functions = [f for f in functions if f.proven]
    if not proven_classes and not proven_functions:
        return {**base, **_report(classes, functions, set(), {}, {}, proof), "status": "none proven"}

    prefix = planned["class_name"].removesuffix("Model").removesuffix("Transformer2D").removesuffix("UNet2D") or "Model"
    trial = _Trial(run, spec, weights, model_path, workdir, _relative_prefix(run), prefix, tree)
    outcome, report = trial.until_parity(model_path.read_text(), proven_classes, proven_functions)
    if outcome is None:  # nothing written, or full parity never passed: back to the port
        repo.run("checkout", ported["commit"], "--", str(model_path))
        return {**base, **_report(classes, functions, set(), trial.dropped, trial.unwritable, proof),
                "status": "reverted" if trial.attempts else "none written", "parity_runs": len(trial.attempts), "attempts": trial.attempts}

    applied = set(outcome.applied)
    names = [f"{d.name} -> {d.block}" for d in [*proven_classes, *proven_functions] if d.port_name in applied]
    sha = commit_all(repo, f"{COMMIT_PREFIX}: {', '.join(names)}\n\nEach replacement was run alone on the inputs the reference module "
                           f"received and matched within max abs {tolerance:g}; full-model parity max abs {report['max_abs_diff']:.3g}.")
    return {
        **base,
        **_report(classes, functions, applied, trial.dropped, trial.unwritable, proof),
        "status": "applied",
        "commit": sha,
        "parity": {k: report[k] for k in ("passed", "max_abs_diff", "mean_abs_diff", "cosine")},
        "parity_report": str(workdir / f"parity-{len(trial.attempts)}" / "parity.json"),
        "parity_runs": len(trial.attempts),
        "attempts": trial.attempts,
        "removed": outcome.removed,
        "definitions": outcome.definitions,
        "imports": outcome.imports,
    }


class _Trial:
    """Write the proven substitutions and run full-model parity; drop the one holding the first
    divergence (else the last) and try again, until parity passes or nothing is left."""

    def __init__(self, run: Run, spec: Path, weights: list[str], model_path: Path, workdir: Path, relative: str | None, prefix: str,
                 tree: dict[str, str] | None = None):
        self.run, self.spec, self.weights, self.model_path, self.workdir = run, spec, weights, model_path, workdir
        self.relative, self.prefix, self.tree = relative, prefix, tree
        self.dropped: dict[str, str] = {}  # port name -> why full parity failed with it
        self.unwritable: dict[str, str] = {}  # port name -> why the codemod could not write it
        self.attempts: list[dict[str, Any]] = []

    def until_parity(self, source: str, classes: list[ClassDecision], functions: list[FunctionDecision]) -> tuple[Outcome | None, dict | None]:
        while classes or functions:
            outcome = substitute(source, [_class_plan(c) for c in classes], [_function_plan(f) for f in functions],
                                 relative=self.relative, prefix=self.prefix, tree=self.tree)
            self.unwritable.update(outcome.failed)
            classes = [c for c in classes if c.port_name in outcome.applied]
            functions = [f for f in functions if f.port_name in outcome.applied]
            if not outcome.applied:
                return None, None
            self.model_path.write_text(outcome.code)
            format_file(self.model_path)
            report, error = _parity(self.run, self.spec, self.workdir / f"parity-{len(self.attempts) + 1}", self.weights)
            self.attempts.append({"applied": outcome.applied, "passed": bool(report and report["passed"]),
                                  **({"max_abs_diff": report["max_abs_diff"]} if report else {"error": error})})
            if report and report["passed"]:
                return outcome, report
            culprit = _culprit(report, error, classes, functions)
            where = ((report or {}).get("first_divergence") or {}).get("reference_module")
            measured = error or f"max abs {report['max_abs_diff']:.3g}"
            self.dropped[culprit] = f"full-model parity failed with it ({measured}{f', first divergence at {where}' if where else ''})"
            classes = [c for c in classes if c.port_name != culprit]
            functions = [f for f in functions if f.port_name != culprit]
        return None, None


def _back_to_port(repo: Git, port_commit: str, model_path: Path) -> None:
    """Start from the port's commit: undo what an interrupted attempt of this stage left."""
    if repo.head() != port_commit:
        message = repo.run("log", "-1", "--format=%B", "HEAD")
        parent = repo.run("rev-parse", "-q", "--verify", "HEAD~1^{commit}", ok=(0, 1)).strip()
        if not (message.startswith(COMMIT_PREFIX) and parent == port_commit):
            raise IntegrateError(f"the workspace has moved past the port's commit {port_commit[:10]}; the blocks stage starts from it")
        repo.reset_to(port_commit)
    repo.run("checkout", port_commit, "--", str(model_path))


def _prove(run: Run, workdir: Path, spec: Path, weights: list[str], tolerance: float) -> dict[str, Any]:
    resolved, analysis = run.result("resolve"), run.result("analyze")
    snapshot = Path(resolved["snapshot"])
    modules = [module_name_for(snapshot / rel, snapshot) for rel in resolved["code_files"] if rel.endswith(".py")]
    job_dir = workdir / "job"
    job_dir.mkdir()
    library_dir = Path(library.__file__).parent
    job = {
        "spec": str(spec), "reference_root": str(snapshot), "reference_modules": [analysis["top_class"]["module"], *modules],
        "library": str(library_dir), "tolerance": tolerance, "max_calls": MAX_CALLS,
    }
    (job_dir / "job.json").write_text(json.dumps(job, indent=2))
    paths = parity_paths(run, weights)  # the reference side's view: the snapshot and the checkpoint, never the port
    result, _ = run_job(
        "try_blocks", [job_dir / "job.json", job_dir / "result.json"], workspace=job_dir, result_file=job_dir / "result.json",
        ro_paths=[*paths.reference, spec.parent, library_dir], env=side_env(paths)["reference"], what="the block proof",
    )
    if not result.get("ok"):
        raise IntegrateError(f"the block proof failed: {result.get('error')}")
    return result


def _relative_prefix(run: Run) -> str | None:
    """How the model file imports diffusers modules: '..' (or deeper) inside a diffusers
    checkout, None (absolute `diffusers.models...`) for a standalone file."""
    if run.result("plan")["layout"] != "diffusers-tree":
        return None
    _, module = candidate_location(run)
    parts = module.split(".")
    return "." * (len(parts) - 2)  # diffusers.models.<family>.<name>: '..' reaches diffusers.models


def _class_plan(c: ClassDecision) -> ClassPlan:
    return ClassPlan(name=c.port_name, code=c.code, exprs=c.exprs, init_params=c.init_params, frozen=c.frozen, container=c.container)


def _function_plan(f: FunctionDecision) -> FunctionPlan:
    return FunctionPlan(name=f.port_name, code=f.code, roles=f.roles, ignore=f.ignore)


def _parity(run: Run, spec: Path, work: Path, weights: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return run_parity_sandboxed(spec, work, parity_paths(run, weights), device=run.inputs.get("device", "cpu")), None
    except IntegrateError as exc:  # the rewritten port did not build or run
        return None, exc.message


def _culprit(report: dict[str, Any] | None, error: str | None, classes: list[ClassDecision], functions: list[FunctionDecision]) -> str:
    """The substitution to drop: the one holding the first diverging module, or the one whose
    block the error names (a port that no longer builds), else the last one."""
    where = ((report or {}).get("first_divergence") or {}).get("reference_module") or ""
    if where:
        holders = [(len(i), c.port_name) for c in classes for i in c.instances if where == i or where.startswith(i + ".")]
        if holders:
            return max(holders)[1]
        inside = [c.port_name for c in classes for i in c.instances if i.startswith(where + ".")]
        if inside:
            return inside[0]
    if error:
        named = [d.port_name for d in [*classes, *functions] if any(re.search(rf"\b{re.escape(b)}\b", error) for b in (d.block or "").split(" + "))]
        if named:
            return named[0]
    return (functions or classes)[-1].port_name


def pr_summary(result: dict[str, Any]) -> dict[str, Any]:
    """The stage's result as the PR body shows it: settings and assumptions as one line each."""
    def text(values: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in values.items())

    return {
        **result,
        "substituted": [{**r, "settings_text": text(r["settings"]), "assumes_text": text(r.get("assumes") or {})} for r in result["substituted"]],
        "functions": [{**f, "settings_text": text(f.get("settings") or {})} for f in result["functions"]],
        "functions_replaced": sum(bool(f.get("replaced")) for f in result["functions"]),
    }


def _settings(d: ClassDecision | FunctionDecision) -> dict[str, Any]:
    """The proven choice, and each dim as the port writes it (over the reference constructor's
    argument names; functions: the reference parameter playing each role)."""
    out = dict(d.choice)
    if isinstance(d, ClassDecision):
        out.update({dim: expr.replace("{", "").replace("}", "") for dim, expr in d.exprs.items()})
    else:
        out.update(d.roles)
    return out


def _report(classes: list[ClassDecision], functions: list[FunctionDecision], applied: set[str], dropped: dict[str, str],
            unwritable: dict[str, str], proof: dict[str, Any]) -> dict[str, Any]:
    """What the PR body shows: per reference class the block and its settings, or why it stays custom."""
    substituted, custom, inside = [], [], []
    replaced = {i: c.block for c in classes if c.port_name in applied for i in c.instances}
    for c in classes:
        row = {"reference_class": c.name, "port_class": c.port_name, "instances": len(c.instances), "parameters": c.parameters}
        if c.port_name in applied:
            substituted.append({**row, "block": c.block, "family": c.family, "origin": c.origin, "settings": _settings(c),
                                "assumes": c.frozen, "calls_proven": c.calls, "max_abs_diff": c.max_abs})
            continue
        outer = {replaced[o] for i in c.instances for o in replaced if i.startswith(o + ".")}
        if c.instances and all(any(i.startswith(o + ".") for o in replaced) for i in c.instances):
            inside.append({**row, "inside": sorted(outer)})  # gone from the port with the modules that held it
            continue
        reason = dropped.get(c.port_name) or (unwritable.get(c.port_name) and f"proven exact, but not written: {unwritable[c.port_name]}") or c.reason
        parts = sorted({i[len(o) + 1:].split(".")[0] for o in c.instances for d in classes if d.port_name in applied
                        for i in d.instances if i.startswith(o + ".")})
        if not (c.block or c.closest) and parts:
            named = ", ".join(f"[{p}]" if p.isdigit() else p for p in parts)
            reason = f"no single block has its structure; its parts {named} are diffusers blocks now"
        custom.append({**row, "closest": c.block or c.closest, "reason": reason or "not applied",
                       **({"tried": c.tried} if c.tried and not (c.block or c.closest) else {})})
    function_rows = []
    for f in functions:
        row = {"reference_function": f.name, "port_function": f.port_name, "calls": f.calls}
        if f.port_name in applied:
            function_rows.append({**row, "block": f.block, "settings": _settings(f), "max_abs_diff": f.max_abs, "replaced": True})
        elif f.proven or f.closest:
            reason = dropped.get(f.port_name) or (unwritable.get(f.port_name) and f"proven exact, but not written: {unwritable[f.port_name]}") or f.reason
            function_rows.append({**row, "closest": f.block or f.closest, "reason": reason, "replaced": False})
    total = int(proof.get("parameters") or 0)
    return {
        "substituted": substituted,
        "custom": custom,
        "inside": inside,
        "functions": function_rows,
        "share": _share(classes, applied, total),
    }


def _share(classes: list[ClassDecision], applied: set[str], total: int) -> dict[str, Any]:
    """Parameters now living in diffusers blocks (and in torch layers that replaced hand-written
    ones), counting an instance inside another replaced instance once."""
    origin = {n: c.origin or "diffusers" for c in classes if c.port_name in applied for n in c.instances}
    size = {n: p for c in classes if c.port_name in applied for n, p in c.instance_parameters.items()}
    outer = [n for n in origin if not any(n.startswith(o + ".") for o in origin if o != n)]
    in_diffusers = sum(size.get(n, 0) for n in outer if origin[n] == "diffusers")
    in_torch = sum(size.get(n, 0) for n in outer if origin[n] == "torch")
    return {
        "total_parameters": total,
        "in_diffusers_blocks": in_diffusers,
        "in_torch_layers": in_torch,
        "diffusers_share": round(in_diffusers / total, 4) if total else 0.0,
    }
