"""verify: parity of the reference against the port built from the converted weights and against
the copy reloaded from its saved folder (sandboxed, fp32 by default), the convention checks, and
the generated test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from agent.checks import check_paths
from agent.errors import ParityFailed
from agent.parity_run import require_report, run_parity_sandboxed, write_spec
from agent.render import render
from agent.run_state import Run


def reports_dir(run: Run) -> Path:
    planned, scaffolded = run.result("plan"), run.result("scaffold")
    if planned["layout"] == "standalone":
        return Path(scaffolded["workspace"]) / "reports"
    return run.path("reports")


def spec_path(run: Run) -> Path:
    planned, scaffolded = run.result("plan"), run.result("scaffold")
    if planned["layout"] == "standalone":
        return Path(scaffolded["workspace"]) / "parity_spec.py"
    return run.path("reports", "parity_spec.py")


def verify(run: Run) -> dict[str, Any]:
    resolved, analysis, planned, scaffolded, converted = (
        run.result(s) for s in ("resolve", "analyze", "plan", "scaffold", "convert")
    )
    workspace = Path(scaffolded["workspace"])
    reports = reports_dir(run)
    if reports.exists():
        shutil.rmtree(reports)
    reports.mkdir(parents=True)
    spec = write_spec(run, spec_path(run), reference_weights=converted["reference_files"], converted_dir=converted["weights_dir"])
    scratch = run.path("verify")
    report, res = run_parity_sandboxed(
        spec,
        workspace=scratch,
        ro_paths=[Path(resolved["snapshot"]), workspace, Path(converted["weights_dir"]), *{Path(p).parent for p in converted["reference_files"]}],
        device=run.inputs.get("device", "cpu"),
    )
    report = require_report(report, res, "parity")
    shutil.copy(scratch / "parity.json", reports / "parity.json")
    shutil.copy(scratch / "parity_layers.png", reports / "parity_layers.png")

    findings = [f.to_dict() for f in check_paths([scaffolded["model_file"]], use_cache=False)]
    for f in findings:
        f["path"] = str(Path(f["path"]).relative_to(workspace))
    (reports / "checks.json").write_text(json.dumps(findings, indent=2) + "\n")

    test_file = workspace / planned["test_path"]
    test_file.parent.mkdir(parents=True, exist_ok=True)
    test_file.write_text(render(
        "tests/test_model.py.j2",
        class_name=planned["class_name"],
        module_name=planned["module_name"],
        layout=planned["layout"],
        config_kwargs=repr(analysis["config_kwargs"]),
        reference_output_head=repr(report["reference_output_head"]),
        output_shape=report["output_shape"],
        inputs=analysis["inputs"],
        seed=report["seed"],
        tolerance=planned["tolerance"],
        parity_command=f"integrate parity {spec.name}",
    ))

    components = [
        {"component": "transformer (converted weights)", **{k: report[k] for k in ("max_abs_diff", "mean_abs_diff", "cosine")}, "passed": report["passed"] and not any("saved folder" in p for p in report["problems"])},
    ]
    if report.get("saved"):
        s = report["saved"]
        components.append({"component": "transformer (reloaded with from_pretrained)", "max_abs_diff": s["max_abs_diff"], "mean_abs_diff": s.get("mean_abs_diff"), "cosine": s["cosine"], "passed": s["passed"]})
    result = {
        "parity": {k: report[k] for k in ("passed", "max_abs_diff", "mean_abs_diff", "cosine", "psnr", "tolerance", "dtype", "device", "first_divergence", "problems")},
        "components": components,
        "isolation": report["sandbox"]["isolation"],
        "isolation_notes": report["sandbox"]["notes"],
        "findings": findings,
        "reports": str(reports),
        "spec": str(spec),
        "test_file": str(test_file),
    }
    run.write_json("verify/summary.json", result)
    if not report["passed"]:
        fd = report.get("first_divergence") or {}
        where = f"; first divergence at {fd['reference_module']}" if fd else ""
        raise ParityFailed(f"parity failed: {'; '.join(report['problems'])}{where}")
    return result
