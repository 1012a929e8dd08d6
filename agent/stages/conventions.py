"""conventions: the parity-green port moved into diffusers' model conventions without an LLM
(agent/porting/conventions: leftovers, permutations, class names, config vocabulary, forward
and output, model class), proven by full-model parity, and gradient checkpointing proven by
gradients with it on equal to gradients with it off. Commits only what was proven; a group that
breaks parity is left out and the reason recorded (docs/conventions.md)."""

from __future__ import annotations

import ast
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agent.checks import check_paths
from agent.errors import IntegrateError
from agent.gitsafe import Git
from agent.layouts import layout_of
from agent.parity_run import (
    parity_paths,
    port_config,
    run_parity_sandboxed,
    side_env,
    write_spec,
)
from agent.porting.conventions import GROUPS, Conventions, Target, apply_conventions
from agent.porting.formatting import format_file
from agent.reference_weights import reference_weight_files
from agent.run_state import Run
from agent.sandboxed import run_job
from agent.workspace import commit_all
from sandbox import safe_files
from sandbox.parity.exchange import ExchangeError, load_tensors

COMMIT_PREFIX = "Conventions"
PREVIOUS = ("blocks", "port")  # the stages whose commit this one starts from, latest first


def _previous(run: Run) -> dict[str, Any]:
    for name in PREVIOUS:
        if run.is_done(name) and run.result(name).get("commit"):
            return {"stage": name, **run.result(name)}
    raise IntegrateError("conventions: no committed port to start from (the port stage did not commit)")


def _restart_from(repo: Git, base: str, model_file: Path) -> None:
    """An interrupted attempt may have left an edited model file or commits of its own on top of
    `base`: back to `base`."""
    head = repo.head()
    if head == base:
        repo.run("checkout", base, "--", str(model_file))
        return
    subjects = repo.run("log", "--format=%s", f"{base}..{head}").splitlines() if head else []
    if not head or repo.run("merge-base", base, head).strip() != base or any(not m.startswith(COMMIT_PREFIX) for m in subjects):
        raise IntegrateError(f"conventions: the workspace moved past {base[:10]} with commits this stage did not make")
    repo.run("reset", "-q", "--hard", base)


def _output_paths(run: Run) -> list[str]:
    """The reference output's tensor paths, as the latest earlier parity run measured them."""
    for name in PREVIOUS:
        path = run.result(name).get("parity_report") if run.is_done(name) else None
        try:
            rows = json.loads(Path(path).read_text()).get("outputs", []) if path else []
        except (OSError, ValueError):
            rows = []
        if rows:
            return [r["reference"] for r in rows if r["seed"] == rows[0]["seed"]]
    return []


def _spec(run: Run, work: Path, conv: Conventions, weights: list[str]) -> Path:
    """The parity spec for this attempt: the port built from its renamed config, called with its
    renamed forward arguments."""
    return write_spec(run, work / "spec" / "parity_spec.py", reference_weights=weights,
                      candidate_kwargs=conv.candidate_config, renamed_inputs=conv.forward_renames)


def _parity(run: Run, work: Path, spec: Path, weights: list[str]) -> dict[str, Any]:
    out = work / "parity"
    if out.exists():
        shutil.rmtree(out)
    return run_parity_sandboxed(spec, out, parity_paths(run, weights), device=run.inputs.get("device", "cpu"))


@dataclass
class Attempt:
    conv: Conventions
    parity: dict[str, Any]
    inspected: dict[str, Any]  # modules, gradients (see _inspect)


def _inspect(run: Run, work: Path, spec: Path, conv: Conventions, weights: list[str]) -> dict[str, Any]:
    """One sandboxed process on the port as written now: its modules, and when it has gradient
    checkpointing, gradients with it off and on (compared here) and the return_dict=False tuple."""
    scratch = work / "inspect"
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    job = {"spec": str(spec), "seed": 0, "out": str(scratch), "gradients": conv.checkpointing, "return_dict": bool(conv.output_class)}
    (scratch / "job.json").write_text(json.dumps(job))
    # the spec's candidate() finds the port under the candidate paths; its inputs() may read the reference's
    paths = parity_paths(run, weights)
    not_added = {"proven": False, "reason": "gradient checkpointing not added"}
    try:
        result, res = run_job("candidate_checks", [scratch / "job.json", scratch / "result.json"], workspace=scratch,
                              result_file=scratch / "result.json", ro_paths=[spec.parent, *paths.reference, *paths.candidate],
                              env=side_env(paths)["mapping"], what="building and checking the port")
    except IntegrateError as exc:
        return {"modules": [], "modules_unknown": exc.message, "gradients": {"proven": False, "reason": exc.message} if conv.checkpointing else not_added}
    if not result.get("ok"):
        why = f"the port could not be built: {result.get('error')}"
        return {"modules": [], "modules_unknown": why, "gradients": {"proven": False, "reason": why} if conv.checkpointing else not_added}
    modules = [m for m in result.get("modules") or [] if isinstance(m, dict) and isinstance(m.get("name"), str)]
    gradients = _compare_gradients(run, scratch, result.get("gradients") or {}) if conv.checkpointing else not_added
    gradients.update(isolation=res.isolation, return_dict=result.get("return_dict"))
    return {"modules": modules, "gradients": gradients}


def _compare_gradients(run: Run, scratch: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Gradients with checkpointing on against off, as the sandboxed job wrote them."""
    if not result.get("ok"):
        return {"proven": False, "reason": f"the check could not run: {result.get('error')}"}
    try:
        off = load_tensors(scratch, "grads_off.safetensors")
        on = load_tensors(scratch, "grads_on.safetensors")
    except (ExchangeError, OSError) as exc:
        return {"proven": False, "reason": f"the check left unreadable gradients: {exc}"}
    tolerance = run.result("plan")["tolerance"]["max_abs"]
    worst, where = 0.0, None
    for name, g in off.items():
        if name not in on or on[name].shape != g.shape:
            return {"proven": False, "reason": f"parameter {name} has no matching gradient with checkpointing on"}
        diff = float((on[name].double() - g.double()).abs().max()) if g.numel() else 0.0
        scaled = diff / max(1.0, float(g.abs().max()) if g.numel() else 1.0)
        if scaled > worst:
            worst, where = scaled, name
    extra = sorted(set(on) - set(off))
    calls = int(result.get("checkpointed_calls", 0))
    blocks = [str(b) for b in result.get("checkpointed_modules") or []]
    inside = [n for n in off if any(n.startswith(f"{b}.") for b in blocks)]
    flowing = [n for n in inside if off[n].numel() and float(off[n].abs().max()) > 0]  # gradients that went through a recomputed block
    out = {
        "max_abs_diff": worst, "worst_parameter": where, "parameters_compared": len(off), "checkpointed_calls": calls,
        "block_parameters_with_gradient": len(flowing), "block_parameters": len(inside),
        "tolerance": tolerance, "loss_off": result.get("loss_off"), "loss_on": result.get("loss_on"),
    }
    if extra:
        return {**out, "proven": False, "reason": f"gradients with checkpointing on for parameters without them off: {extra[:3]}"}
    if calls == 0:
        return {**out, "proven": False, "reason": "no block call went through the checkpointing function"}
    if not flowing:
        return {**out, "proven": False, "reason": "no parameter inside a checkpointed block received a gradient: nothing was compared"}
    if worst > tolerance:
        return {**out, "proven": False, "reason": f"gradients differ by {worst:.3g} (relative to their size) at {where}"}
    return {**out, "proven": True, "reason": f"{len(off)} parameter gradients equal (max diff {worst:.3g}), {len(flowing)} of them inside "
                                             f"the {calls} checkpointed block calls"}


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    return {k: report[k] for k in ("passed", "max_abs_diff", "mean_abs_diff", "cosine")}


def _why(report: dict[str, Any]) -> str:
    fd = report.get("first_divergence") or {}
    return "; ".join(report.get("problems") or ["parity failed"]) + (f"; first divergence at {fd['reference_module']}" if fd else "")


def _from_reference_names(conversion: dict[str, Any], analysis: dict[str, Any]) -> dict[str, Any]:
    """The conventions' conversion reads the port's argument names; a reference config.json has the
    reference's, which the port stage renamed first (analysis "port_renames") when they would hide a
    submodule. A factory's nested config.json has neither, so nothing is composed for it."""
    port_renames = analysis.get("port_renames") or {}
    if not port_renames or analysis.get("factory"):
        return conversion
    renames = dict(conversion.get("renames", {}))
    composed = {ref: renames.pop(port, port) for ref, port in port_renames.items()}
    return {**conversion, "renames": {**composed, **renames}}


def conventions(run: Run) -> dict[str, Any]:
    analysis, planned, scaffolded = run.result("analyze"), run.result("plan"), run.result("scaffold")
    previous = _previous(run)
    repo = Git.for_workspace(Path(scaffolded["workspace"]))
    base = previous["commit"]
    model_path = Path(scaffolded["model_file"])
    _restart_from(repo, base, model_path)
    source = model_path.read_text()
    work = run.path("conventions")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    config = port_config(analysis)
    target = Target(
        class_name=planned["class_name"], family=planned.get("family", "transformers"),
        in_tree=planned["layout"] == "diffusers-tree", depth=1 if layout_of(planned) == "folder" else 0,
        reference_class=planned["reference_class"],
        config=config, inputs=analysis["inputs"], output_paths=_output_paths(run),
    )
    weights = [str(p) for p in reference_weight_files(run)]

    def write(conv: Conventions) -> None:
        model_path.write_text(conv.code)
        format_file(model_path)
        conv.code = model_path.read_text()

    def attempt(groups: list[str], without_checkpointing: str | None = None) -> Attempt:
        """Apply `groups`; with the model-class group, build and check the port first (its module
        names decide the casting patterns, the only line written after the check), then parity."""
        conv = apply_conventions(source, target, groups, without_checkpointing)
        spec = _spec(run, work, conv, weights)
        inspected: dict[str, Any] = {"modules": [], "gradients": {"proven": False, "reason": "gradient checkpointing not added"}}
        if "model class" in groups:
            write(conv)
            inspected = _inspect(run, work, spec, conv, weights)
            if inspected["modules"]:
                conv = apply_conventions(source, replace(target, modules=inspected["modules"]), groups, without_checkpointing)
        write(conv)
        return Attempt(conv, _parity(run, work, spec, weights), inspected)

    tried: list[dict[str, Any]] = []

    def record(groups: list[str], report: dict[str, Any], **extra: Any) -> None:
        tried.append({"groups": groups, **extra, "parity": _summary(report), **({} if report["passed"] else {"why": _why(report)})})

    commits: list[str] = []
    committed: list[str] = []  # groups already in a commit of their own
    last: Attempt | None = attempt(list(GROUPS))
    record(list(GROUPS), last.parity)
    accepted = list(GROUPS) if last.parity["passed"] else []
    if not last.parity["passed"]:
        # which groups break parity: add one group at a time, keep (and commit) it only when green
        last = None
        for group in GROUPS:
            tried_now = attempt([*accepted, group])
            record([*accepted, group], tried_now.parity)
            if tried_now.parity["passed"]:
                accepted.append(group)
                last = tried_now
                if not tried_now.conv.checkpointing:  # checkpointing is committed only with its gradients proven, below
                    sha = commit_all(repo, f"{COMMIT_PREFIX}: {group} (parity max abs {tried_now.parity['max_abs_diff']:.2e})")
                    commits += [sha] if sha else []
                    committed.append(group)
        if last is not None:
            model_path.write_text(last.conv.code)  # the last green state
    if last is not None and last.conv.checkpointing and not last.inspected["gradients"]["proven"]:
        why = f"left out: gradients with checkpointing on did not match it off ({last.inspected['gradients']['reason']})"
        failed_check = last.inspected["gradients"]
        last = attempt(accepted, without_checkpointing=why)
        record(accepted, last.parity, without_checkpointing=True)
        last.inspected["gradients"] = failed_check
        if not last.parity["passed"]:
            last = None
    if last is None:
        repo.run("reset", "-q", "--hard", base)
        model_path.write_text(source)
        status, commits = "reverted", []
    else:
        status = "applied" if accepted == list(GROUPS) else "partial"
        changed = [r.group for r in last.conv.reports if r.changes and r.group not in committed]
        proven = ", gradient checkpointing proven" if last.inspected["gradients"]["proven"] else ""
        sha = commit_all(repo, f"{COMMIT_PREFIX}: {', '.join(changed) or 'nothing to change'} "
                               f"(parity max abs {last.parity['max_abs_diff']:.2e}{proven})")
        commits += [sha] if sha else []
    conv, report = (last.conv, last.parity) if last else (None, None)
    gradients = last.inspected["gradients"] if last else {"proven": False, "reason": "nothing applied"}
    modules = last.inspected["modules"] if last else []
    left = [f.to_dict() for f in check_paths([model_path], use_cache=False)]
    conversion = _from_reference_names(conv.config_conversion if conv else {}, analysis)
    result = {
        "status": status,
        "base_commit": base,
        "started_from": previous["stage"],
        "commit": commits[-1] if commits else None,
        "commits": commits,
        "model_file": str(model_path),
        "groups_applied": accepted,
        "groups_left_out": [g for g in GROUPS if g not in accepted],
        "attempts": tried,
        "changes": {r.group: r.changes for r in conv.reports} if conv else {},
        "skipped": {r.group: r.skipped for r in conv.reports if r.skipped} if conv else {},
        "forward_renames": conv.forward_renames if conv else {},
        "config_renames": conversion.get("renames", {}),
        "config_conversion": {**conversion, "drop": list(analysis.get("ignored_config_keys", []))} if conversion else None,
        "candidate_config": conv.candidate_config if conv else config,
        "output_class": conv.output_class if conv else None,
        "flags": conv.flags if conv else {},
        "gradient_checkpointing": gradients,
        "modules_listed": len(modules) if modules else (last.inspected.get("modules_unknown", "not listed") if last else "not listed"),
        "parity": _summary(report) if report else tried[-1]["parity"],
        "parity_report": str(work / "parity" / "parity.json"),
        "left_for_refinement": left,
    }
    run.write_json("conventions/summary.json", result)
    safe_files.write_text(work, "model_after.py", model_path.read_text())
    return result


def pr_summary(result: dict[str, Any], final_code: str, class_name: str) -> dict[str, Any]:
    """What the PR body says about this stage: the call signature and output the final file has,
    the config rename a reference config.json goes through, the class flags, and what was left out
    or skipped with the reason."""
    signature = None
    try:
        tree = ast.parse(final_code)
    except SyntaxError:
        tree = None
    cls = next((n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == class_name), None) if tree else None
    forward = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "forward"), None) if cls else None
    if forward is not None:
        a = forward.args
        names = [p.arg for p in [*a.posonlyargs, *a.args][1:]] + ([f"*{a.vararg.arg}"] if a.vararg else []) + \
                [p.arg for p in a.kwonlyargs] + ([f"**{a.kwarg.arg}"] if a.kwarg else [])
        signature = f"forward({', '.join(names)})"
    left_out = {a_["groups"][-1]: a_["why"] for a_ in result.get("attempts", []) if a_.get("why") and a_["groups"][-1] in result.get("groups_left_out", [])}
    return {
        "status": result["status"],
        "groups_applied": result.get("groups_applied", []),
        "left_out": left_out,
        "parity": result.get("parity"),
        "signature": signature,
        "forward_renames": result.get("forward_renames") or {},
        "output_class": result.get("output_class"),
        "config_renames": result.get("config_renames") or {},
        "per_head": (result.get("config_conversion") or {}).get("per_head") or {},
        "flags": result.get("flags") or {},
        "gradients": result.get("gradient_checkpointing") or {},
        "skipped": [f"{s['what']}: {s['reason']}" for items in (result.get("skipped") or {}).values() for s in items],
    }
