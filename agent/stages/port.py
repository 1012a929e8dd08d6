"""port: the structural port. The reference code moves into the diffusers model file with its
numerics untouched, parity is measured against the reference, and the result is committed
only when parity passes. LLM refinement plugs in after this commit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import git

from agent.checks import check_paths
from agent.errors import IntegrateError, ParityFailed
from agent.parity_run import require_report, run_parity_sandboxed, write_spec
from agent.porting.codemods import port_codemods
from agent.porting.config_capture import capture_config
from agent.run_state import Run
from agent.stages.scaffold import model_file
from agent.workspace import commit_all

STANDALONE_DISPATCH = "from diffusers.models.attention_dispatch import dispatch_attention_fn\n"
IN_TREE_DISPATCH = "from ..attention_dispatch import dispatch_attention_fn\n"


def _refinement_decision(llm: str) -> dict[str, Any]:
    if llm == "none":
        return {"status": "skipped", "reason": "--llm none: structural port only"}
    if llm == "auto" and not os.environ.get("ANTHROPIC_API_KEY"):
        return {"status": "skipped", "reason": "no ANTHROPIC_API_KEY set (--llm auto): structural port only"}
    return {"status": "skipped", "reason": f"LLM refinement ({llm}) is not available in this version: structural port only"}


def port(run: Run) -> dict[str, Any]:
    resolved, analysis, planned, scaffolded = (run.result(s) for s in ("resolve", "analyze", "plan", "scaffold"))
    snapshot = Path(resolved["snapshot"])
    source = (snapshot / analysis["top_class"]["file"]).read_text()
    in_tree = planned["layout"] == "diffusers-tree"
    mods = port_codemods(source, IN_TREE_DISPATCH if in_tree else STANDALONE_DISPATCH)
    try:
        body = capture_config(mods.code, planned["reference_class"], planned["class_name"], in_tree=in_tree)
    except ValueError as exc:
        raise IntegrateError(f"structural port failed: {exc}") from None
    model_path = Path(scaffolded["model_file"])
    model_path.write_text(model_file(run, body=body))

    workdir = run.path("port")
    workdir.mkdir(exist_ok=True)
    spec = write_spec(run, workdir / "parity_spec.py")
    report, res = run_parity_sandboxed(
        spec, workspace=workdir, ro_paths=[snapshot, Path(scaffolded["workspace"])], device=run.inputs.get("device", "cpu")
    )
    report = require_report(report, res, "parity of the structural port")
    if not report["passed"]:
        fd = report.get("first_divergence") or {}
        where = f"; first divergence at {fd['reference_module']}" if fd else ""
        raise ParityFailed(f"structural port does not match the reference: {'; '.join(report['problems'])}{where}")

    sha = commit_all(git.Repo(scaffolded["workspace"]), f"Port {planned['reference_class']} as {planned['class_name']} (structural, numerics untouched)")
    left = [f.to_dict() for f in check_paths([model_path], use_cache=False)]
    return {
        "model_file": str(model_path),
        "commit": sha,
        "parity": {k: report[k] for k in ("passed", "max_abs_diff", "mean_abs_diff", "cosine")},
        "parity_report": str(workdir / "parity.json"),
        "codemods": {
            "converted": mods.converted,
            "left": [item.to_dict() for item in mods.left],
            "dropped_imports": mods.dropped_imports,
        },
        "left_for_refinement": left,
        "refinement": _refinement_decision(run.inputs.get("llm", "auto")),
        "isolation": report["sandbox"]["isolation"],
    }
