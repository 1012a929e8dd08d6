"""The dynamic compliance suite (docs/compliance.md): runtime checks of the diffusers model
contract on a port, run in the sandbox by `sandbox.jobs.compliance`; here its result becomes a
per-check table and one finding per failed check, with the evidence.

`run_compliance(run)` is the entry for a run (the verify stage); `compliance_job(...)` takes a
port by location, for use outside a run.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sandbox
from agent.errors import IntegrateError
from agent.parity_run import candidate_config, candidate_location, write_spec
from agent.run_state import Run
from agent.sandboxed import run_job
from sandbox.compliance.port import INPUT_SEEDS
from sandbox.compliance.registry import CHECKS

STATUSES = ("passed", "failed", "skipped")


def compliance_job(
    import_root: str | Path,
    module: str,
    class_name: str,
    config: Mapping[str, Any] | None,
    weights_dir: str | Path | None,
    spec: str | Path,
    *,
    workdir: str | Path,
    tolerance: float | None = None,
    device: str = "cpu",
    only: Sequence[str] | None = None,
    skip: Mapping[str, str] | None = None,
    ro_paths: Sequence[str | Path] = (),
    limits: sandbox.Limits | None = None,
) -> dict[str, Any]:
    """Run the suite on the port `module.class_name` importable from `import_root`, built from
    `weights_dir` (a diffusers folder; None: `config` with seeded random weights), fed with the
    spec's `inputs(seed)["candidate"]`. `skip` names checks not to run, each with the reason
    recorded; `only` restricts the suite. `workdir` is emptied and becomes the job's only
    writable folder. Raises IntegrateError when the suite could not run at all."""
    unknown = sorted({*(only or ()), *(skip or {})} - {c.NAME for c in CHECKS})
    if unknown:
        raise IntegrateError(f"unknown compliance checks: {', '.join(unknown)} (known: {', '.join(c.NAME for c in CHECKS)})")
    workdir = Path(workdir).resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    spec = Path(spec).resolve()
    job = {
        "import_root": str(Path(import_root).resolve()),
        "module": module,
        "class_name": class_name,
        "config": dict(config or {}),
        "weights_dir": str(Path(weights_dir).resolve()) if weights_dir else None,
        "spec": str(spec),
        "tolerance": tolerance,
        "device": device,
        "only": list(only) if only is not None else None,
        "skip": dict(skip or {}),
    }
    (workdir / "job.json").write_text(json.dumps(job, indent=2))
    visible = [Path(job["import_root"]), spec, *map(Path, ro_paths)]
    if weights_dir:
        visible.append(Path(job["weights_dir"]))
    raw, res = run_job(
        "compliance",
        [workdir / "job.json", workdir / "result.json"],
        workspace=workdir,
        result_file=workdir / "result.json",
        ro_paths=visible,
        limits=limits,
        # first on the path from the start: a port inside a diffusers checkout must not be looked
        # up in the installed diffusers that the suite's own imports load
        env={"PYTHONPATH": str(Path(import_root).resolve())},
        what="the compliance suite",
    )
    if not raw.get("ok"):
        raise IntegrateError(f"the compliance suite could not run: {raw.get('error') or res.one_line_error()}")
    return summarize(raw, res, only=only)


def summarize(raw: dict[str, Any], res: sandbox.SandboxResult, *, only: Sequence[str] | None = None) -> dict[str, Any]:
    """The job's rows, completed when the sandbox stopped it midway: the check that was running
    fails (with how it was stopped), the ones after it are skipped as not reached."""
    rows = [r for r in raw.get("checks", []) if isinstance(r, dict) and r.get("status") in STATUSES]
    if not raw.get("complete") or not res.ok:
        done = {r["check"] for r in rows}
        expected = [c for c in CHECKS if (only is None or c.NAME in only) and c.NAME not in done]
        if res.reason == "exit":
            stop = f"the suite's process exited with code {res.returncode}" if res.returncode else "the suite ended early"
        else:
            stop = f"stopped by the sandbox ({res.reason} after {res.wall_s}s)"
        for i, c in enumerate(expected):
            if i == 0:
                rows.append({"check": c.NAME, "title": c.TITLE, "status": "failed", "summary": f"{stop} while this check ran", "evidence": {"sandbox": res.reason}})
            else:
                rows.append({"check": c.NAME, "title": c.TITLE, "status": "skipped", "summary": f"not reached: {stop} during {expected[0].NAME}", "evidence": {}})
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    findings = [
        {"rule": f"compliance/{r['check']}", "check": r["check"], "title": r.get("title", r["check"]),
         "message": r["summary"], "evidence": r.get("evidence", {})}
        for r in rows if r["status"] == "failed"
    ]
    return {
        "passed": counts["failed"] == 0,
        "counts": counts,
        "checks": rows,
        "findings": findings,
        "tolerance": raw.get("tolerance"),
        "device": raw.get("device"),
        "input_seeds": list(INPUT_SEEDS),
        "versions": {"torch": raw.get("torch"), "diffusers": raw.get("diffusers")},
        "wall_s": raw.get("wall_s"),
        "sandbox": {"isolation": res.isolation, "notes": res.isolation_notes, "reason": res.reason,
                    "wall_s": res.wall_s, "peak_rss_mb": res.peak_rss_mb},
    }


def run_compliance(run: Run, *, skip: Mapping[str, str] | None = None, only: Sequence[str] | None = None,
                   limits: sandbox.Limits | None = None) -> dict[str, Any]:
    """The suite on a run's port with its converted weights (the convert stage's folder) and
    its seeded inputs (a parity spec written for it under runs/<id>/compliance/). Writes
    compliance/summary.json in the run and returns the summary (see `summarize`); each finding
    carries `path`, the model file relative to the workspace."""
    analysis, planned, scaffolded, converted = (run.result(s) for s in ("analyze", "plan", "scaffold", "convert"))
    root, module = candidate_location(run)
    base = run.path("compliance")
    if base.exists():
        shutil.rmtree(base)
    spec = write_spec(run, base / "spec" / "compliance_spec.py", converted_dir=converted["weights_dir"])
    result = compliance_job(
        root, module, planned["class_name"], candidate_config(run), converted["weights_dir"], spec,
        workdir=base / "job", tolerance=planned["tolerance"]["max_abs"], device=run.inputs.get("device", "cpu"),
        only=only, skip=skip, ro_paths=[Path(scaffolded["workspace"])], limits=limits,
    )
    workspace = Path(scaffolded["workspace"])
    model_file = Path(scaffolded["model_file"])
    for finding in result["findings"]:
        finding["path"] = str(model_file.relative_to(workspace)) if model_file.is_relative_to(workspace) else str(model_file)
    result["spec"] = str(spec)
    run.write_json("compliance/summary.json", result)
    return result


def markdown_table(result: Mapping[str, Any]) -> str:
    """The per-check table for PR.md: check, result, what was found."""
    marks = {"passed": "passed", "failed": "**failed**", "skipped": "skipped"}
    lines = ["| check | result | details | time |", "|---|---|---|---|"]
    for r in result["checks"]:
        summary = str(r["summary"]).replace("|", "\\|").replace("\n", " ")
        wall = f"{r['wall_s']:.1f}s" if isinstance(r.get("wall_s"), (int, float)) else ""
        lines.append(f"| {r.get('title', r['check'])} | {marks.get(r['status'], r['status'])} | {summary} | {wall} |")
    c = result["counts"]
    lines.append("")
    lines.append(f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped "
                 f"({result.get('device')}, input seeds {', '.join(map(str, result['input_seeds']))}, tolerance {result.get('tolerance')})")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m agent.compliance RUN [--skip CHECK=REASON]... [--only CHECK]... [--json OUT]`:
    the suite on a finished run's port; prints the table. Exit 0 nothing failed, 1 a check
    failed, 2 it could not run."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m agent.compliance", description=main.__doc__)
    parser.add_argument("run", help="a run folder (runs/<id>) that reached the convert stage")
    parser.add_argument("--skip", action="append", default=[], metavar="CHECK=REASON", help="do not run CHECK; REASON is recorded")
    parser.add_argument("--only", action="append", metavar="CHECK", help="run only these checks")
    parser.add_argument("--json", metavar="OUT", help="also write the result as JSON")
    args = parser.parse_args(argv)
    try:
        skip = dict(item.split("=", 1) for item in args.skip)
    except ValueError:
        print("error: --skip takes CHECK=REASON", file=sys.stderr)
        return 2
    try:
        result = run_compliance(Run.load(args.run), skip=skip, only=args.only)
    except IntegrateError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(markdown_table(result), end="")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
