"""publish: commit the evidence in the workspace and write PR.md (summary, parity table,
convention findings, commands to reproduce). For --target, the work stays on its branch and a
patch bundle is written beside PR.md; no network is needed."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import git

from agent import __version__
from agent.publish.remote import publish_remote
from agent.redact import redact
from agent.render import render
from agent.run_state import Run
from agent.stages.verify import reports_dir
from agent.workspace import commit_all, remove_worktree


def reproduce_commands(run: Run) -> list[str]:
    inputs, planned, verified = run.inputs, run.result("plan"), run.result("verify")
    cmd = ["integrate", inputs["source"]]
    if inputs.get("target"):
        cmd += ["--target", inputs["target"]]
    else:
        cmd += ["--out", inputs["out"]]
    if inputs.get("reference"):
        cmd += ["--reference", inputs["reference"]]
    cmd += ["--llm", inputs.get("llm", "auto"), "--device", inputs.get("device", "cpu")]
    spec = Path(verified["spec"])
    parity = ["integrate", "parity", str(spec), "--device", inputs.get("device", "cpu"), "--allow-read", str(run.dir)]
    commands = [
        "# the whole run",
        shlex.join(cmd),
        "# parity only (reference vs port, converted and reloaded)",
        shlex.join(parity),
        "# convention checks",
        shlex.join(["integrate", "check", run.result("scaffold")["model_file"]]),
    ]
    if planned["layout"] == "standalone":
        commands += ["# generated test", shlex.join(["python", "-m", "pytest", verified["test_file"]])]
    return commands


def publish(run: Run) -> dict[str, Any]:
    resolved, analysis, planned, scaffolded, converted, verified = (
        run.result(s) for s in ("resolve", "analyze", "plan", "scaffold", "convert", "verify")
    )
    ported = run.result("port")
    workspace = Path(scaffolded["workspace"])
    body = render(
        "PR.md.j2",
        version=__version__,
        run_id=run.id,
        class_name=planned["class_name"],
        reference_class=planned["reference_class"],
        origin=resolved["origin"],
        layout=planned["layout"],
        model_path=planned["model_path"],
        config_args=list(analysis["config_kwargs"]),
        registered_in=scaffolded["registered_in"],
        tensors=converted["tensors"],
        mapping=converted["mapping"],
        reload_equal=converted["reload_equal"],
        refinement=redact(run.result("refine")),
        codemods=ported["codemods"],
        parity=verified["parity"],
        seed=0,
        components=verified["components"],
        isolation=verified["isolation"],
        isolation_notes=verified["isolation_notes"],
        findings=verified["findings"],
        commands=reproduce_commands(run),
    )
    repo = git.Repo(workspace)
    result: dict[str, Any] = {}
    if planned["layout"] == "standalone":
        pr = workspace / "PR.md"
        pr.write_text(body)
        sha = commit_all(repo, f"Add parity evidence, generated test and PR.md for {planned['class_name']}")
        result.update(out=str(workspace), branch=repo.active_branch.name)
    else:
        pr = run.path("PR.md")
        pr.write_text(body)
        # a resumed publish finds its commit already made: report the branch's head then
        sha = commit_all(repo, f"Add generated test for {planned['class_name']}") or repo.head.commit.hexsha
        patch = run.path("changes.patch")
        first = scaffolded["commit"]
        patch.write_text(repo.git.format_patch("--stdout", f"{first}~1..HEAD"))
        result.update(branch=planned["branch"], patch=str(patch), target=run.inputs["target"])
    # --- remote publishing (agent/publish): Hub PR, push, draft GitHub PR; {} for the bundle ---
    # Before the worktree goes: a failure here leaves the stage resumable as it stands.
    result["remote"] = publish_remote(run, body)
    if planned["layout"] != "standalone":
        remove_worktree_keep_branch(run)
    result.update(pr_body=str(pr), commit=sha, reports=str(reports_dir(run)))
    return result


def remove_worktree_keep_branch(run: Run) -> None:
    owned = run.data.get("owned", {})
    keep = {k: v for k, v in owned.items() if k != "branch"}
    remove_worktree(Path(run.inputs["target"]), keep)
    owned.pop("worktree", None)
    run.save()
