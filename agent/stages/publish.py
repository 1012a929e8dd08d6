"""publish: write the evidence into the branch (manifest, spec, mapping, reports), write the PR
body, and commit. Every path in the branch and the body is relative, and every command in the
body's Reproduce section runs as written from a fresh clone of the branch. For --target the
work stays on its branch and a patch bundle is written beside the body; no network is needed."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from agent import __version__
from agent.compliance import markdown_table
from agent.errors import IntegrateError
from agent.gitsafe import Git, seal
from agent.layouts import layout_of
from agent.parity_run import candidate_config
from agent.publish.evidence import MANIFEST, build_manifest, evidence_dir, write_manifest
from agent.publish.usage import paper_link
from agent.redact import redact
from agent.reference_weights import reference_weight_files
from agent.render import render
from agent.repo_checks import markdown_table as repo_checks_table
from agent.repo_checks import run_repo_checks
from agent.run_state import Run
from agent.stages.blocks import pr_summary
from agent.stages.conventions import pr_summary as conventions_summary
from agent.workspace import commit_all, remove_worktree
from sandbox import safe_files

REFERENCE_FOLDER = "../reference"  # where the Reproduce commands put the reference, beside the clone
CONVERTED_CONFIG = "diffusers_config.json"


def _rel(path: str | Path, root: Path) -> str:
    return Path(path).resolve().relative_to(root.resolve()).as_posix()


def reproduce_commands(run: Run) -> list[str]:
    """The checks a maintainer runs from the root of a fresh clone of the branch."""
    resolved, planned, scaffolded, verified = (run.result(s) for s in ("resolve", "plan", "scaffold", "verify"))
    workspace = Path(scaffolded["workspace"])
    evidence = _rel(evidence_dir(run), workspace) if evidence_dir(run) != workspace else "."
    standalone = planned["layout"] == "standalone"
    converted = "weights" if standalone else "../converted"
    import_root = "." if standalone else "src"
    weights = [f"{REFERENCE_FOLDER}/{w['file']}" for w in resolved["weights"]]
    if resolved["kind"] == "hub":
        fetch = ["hf", "download", resolved["origin"], "--revision", resolved["revision"], "--local-dir", REFERENCE_FOLDER]
    else:
        fetch = None
    commands = ["# every claim below, re-measured in the sandbox (exit 0 only if all reproduce)", shlex.join(["integrate", "verify", "."])]
    commands += ["# or one by one: the reference, as recorded in the manifest"]
    if fetch:
        commands.append(shlex.join(fetch))
    else:
        commands.append(f"# (local source {Path(resolved['origin']).name!r}: copy the author's folder to {REFERENCE_FOLDER}; the manifest has its hashes)")
    commands += [
        "# the converted weights, from the reference and the mapping in this branch",
        shlex.join(["integrate", "convert", *weights, "--mapping", _rel(run.result("convert")["mapping_file"], workspace),
                    "--config", f"{evidence}/{CONVERTED_CONFIG}", "--out", converted]),
        "# parity: reference and port each in their own sandbox, the verdict outside both",
        shlex.join(["integrate", "parity", _rel(verified["spec"], workspace), "--reference-path", REFERENCE_FOLDER,
                    "--candidate-path", import_root, "--candidate-path", converted]),
        "# convention checks on the port",
        shlex.join(["integrate", "check", _rel(scaffolded["model_file"], workspace)]),
    ]
    if standalone:
        commands += ["# the generated test (loads ./weights)", shlex.join(["python", _rel(verified["test_file"], workspace)])]
    return commands


def _refinement(run: Run) -> dict[str, Any]:
    """The refine result as the PR states it: a replayed script is not an API session."""
    refined = dict(redact(run.result("refine")))
    if refined.get("backend") == "scripted":
        refined["replayed"] = True
        refined.pop("usage", None)
        refined["reason"] = "replayed script (no API calls)" + (f": {refined['summary']}" if refined.get("summary") else "")
    return refined


def _codemods_still_in(final_code: str, codemods: dict[str, Any]) -> dict[str, Any]:
    """The structural port's rewrites that the final file still contains (later stages and the
    refinement may have replaced some)."""
    kept = [c for c in codemods["converted"] if c["to"] in final_code]
    return {**codemods, "converted": kept, "replaced_later": len(codemods["converted"]) - len(kept)}


def publish(run: Run) -> dict[str, Any]:
    resolved, analysis, planned, scaffolded, converted, verified = (
        run.result(s) for s in ("resolve", "analyze", "plan", "scaffold", "convert", "verify")
    )
    workspace = Path(scaffolded["workspace"])
    evidence = evidence_dir(run)
    safe_files.copy_out(Path(converted["weights_dir"]), "config.json", evidence / CONVERTED_CONFIG, max_bytes=4 * 1024 * 1024)
    manifest = build_manifest(run, weight_files=reference_weight_files(run), spec_inputs=verified["spec_context"])
    manifest_path = write_manifest(run, manifest)
    final_code = Path(scaffolded["model_file"]).read_text()
    # diffusers' own checks on the branch (--target): a branch they fail is not published
    repo_checks = run_repo_checks(run) if planned["layout"] != "standalone" else None
    source = resolved["origin"] if resolved["kind"] == "hub" else Path(resolved["origin"]).name
    body = render(
        "PR.md.j2",
        version=__version__,
        run_id=run.id,
        class_name=planned["class_name"],
        reference_class=planned["reference_class"],
        origin=source,
        source_kind=resolved["kind"],
        revision=resolved.get("revision"),
        layout=planned["layout"],
        model_layout=layout_of(planned),
        model_path=planned["model_path"],
        config_args=list(candidate_config(run)),
        config_dataclasses=analysis.get("config_dataclasses"),
        port_renames=analysis.get("port_renames") or {},
        registered_in=[_rel(p, workspace) if Path(p).is_absolute() else p for p in scaffolded["registered_in"]],
        tensors=converted["tensors"],
        mapping=converted["mapping"],
        reload_equal=converted["reload_equal"],
        refinement=_refinement(run),
        blocks=pr_summary(run.result("blocks")) if run.is_done("blocks") else None,
        conventions=conventions_summary(run.result("conventions"), final_code, planned["class_name"]) if run.is_done("conventions") else None,
        codemods=_codemods_still_in(final_code, run.result("port")["codemods"]),
        parity=verified["parity"],
        components=verified["components"],
        isolation=verified["isolation"],
        isolation_notes=verified["isolation_notes"],
        findings=verified["findings"],
        generated_test=verified["generated_test"],
        generated_test_path=_rel(verified["test_file"], workspace),
        usage=verified.get("usage"),
        paper=paper_link(Path(resolved["snapshot"]), resolved.get("model_card")),
        compliance=verified["compliance"],
        compliance_table=markdown_table(verified["compliance"]),
        manifest=_rel(manifest_path, workspace),
        repo_checks=repo_checks,
        repo_checks_table=repo_checks_table(repo_checks) if repo_checks else "",
        commands=reproduce_commands(run),
    )
    repo = Git.for_workspace(workspace, in_tree_ok=planned["layout"] == "standalone")  # sealed by an earlier attempt
    result: dict[str, Any] = {"manifest": str(manifest_path)}
    if planned["layout"] == "standalone":
        pr = workspace / "PR.md"
        safe_files.write_text(workspace, "PR.md", body)
        sha = commit_all(repo, f"Add the evidence ({MANIFEST}, parity spec and reports), the generated test and PR.md for {planned['class_name']}")
        result.update(out=str(workspace), branch=repo.branch())
        seal(workspace, repo.git_dir)  # the model is done: out/ becomes a self-contained repository
    else:
        pr = run.path("PR.md")
        safe_files.write_text(run.dir, "PR.md", body)
        sha = commit_all(repo, f"Add the evidence ({MANIFEST}, parity spec and reports) and the generated test for {planned['class_name']}")
        sha = sha or repo.head()  # a resumed publish finds its commit already made
        first = scaffolded["commit"]
        safe_files.write_text(run.dir, "changes.patch", repo.format_patch(f"{first}~1..HEAD"))
        result.update(branch=planned["branch"], patch=str(run.path("changes.patch")), target=run.inputs["target"])
    # --- remote publishing (agent/publish): Hub PR, push, draft GitHub PR; {} for the bundle ---
    # Not when diffusers' own checks block the branch; before the worktree goes, so a failure
    # here (exit 2) leaves the stage to `integrate resume`.
    if not (repo_checks is not None and repo_checks["blocking"]):
        from agent.publish.remote import publish_remote  # PyGithub and huggingface_hub: only when publishing

        result["remote"] = publish_remote(run, body)
    if planned["layout"] != "standalone":
        remove_worktree_keep_branch(run)
    result.update(pr_body=str(pr), commit=sha, reports=str(evidence / "reports"))
    if repo_checks is not None:
        result["repo_checks"] = {k: repo_checks[k] for k in ("passed", "complete", "blocking")}
        if repo_checks["blocking"]:
            raise IntegrateError(
                f"not published: diffusers' own checks fail on branch {planned['branch']}: {', '.join(repo_checks['blocking'])} "
                f"(details in {run.path('repo_checks', 'summary.json')}; the PR body is {pr})", exit_code=1,
            )
    return result


def remove_worktree_keep_branch(run: Run) -> None:
    owned = run.data.get("owned", {})
    keep = {k: v for k, v in owned.items() if k != "branch"}
    remove_worktree(Path(run.inputs["target"]), keep)
    owned.pop("worktree", None)
    run.save()
