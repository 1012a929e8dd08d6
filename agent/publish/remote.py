"""The publish stage's remote half: Hub pull request, push, draft GitHub pull request.

`publish_remote(run, body)` is the one call the publish stage makes into this package. It does
nothing for `--publish bundle` (the default: the offline output the stage already wrote). With
`hub` it uploads the converted weights as a Hub pull request; with `github` it pushes the run's
branch to the fork and opens (or updates) the draft pull request, linking the Hub pull request
when there is one. Every step is safe to repeat, so `integrate resume` after a failure (a push
rejected half-way, a rate limit that outlasted the retries) carries on where it stopped and
updates what the first attempt made. With `--dry-run` nothing is sent: the calls are printed.

Tokens are read here, in the parent process, from the environment (GITHUB_TOKEN or the App's
variables, HF_TOKEN); they are never written to run.json, a report, a log or the PR body.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import git

from agent import __version__
from agent.errors import IntegrateError
from agent.publish.dryrun import DryRun
from agent.publish.github import PR_MARKER, GitHubClient, marker_fields
from agent.publish.hub import SUBFOLDER, HubClient
from agent.publish.push import push_branch
from agent.redact import redact_text
from agent.run_state import Run

DEFAULT_UPSTREAM = "huggingface/diffusers"
DEFAULT_LABELS = ("integrate-generated",)
GITHUB_REMOTE = re.compile(r"(?:https://|ssh://git@|git@)github\.com[:/](?P<repo>[\w.-]+/[\w.-]+?)(?:\.git)?/?$")


def upstream_of(checkout: Path) -> str:
    """The GitHub repository a diffusers checkout was cloned from (remote `upstream`, else
    `origin`), else huggingface/diffusers."""
    try:
        remotes = {r.name: list(r.urls) for r in git.Repo(checkout).remotes}
    except (git.GitError, OSError, ValueError):
        return DEFAULT_UPSTREAM
    for name in ("upstream", "origin"):
        for url in remotes.get(name, []):
            m = GITHUB_REMOTE.match(url)
            if m:
                return m["repo"]
    return DEFAULT_UPSTREAM


def settings(run: Run) -> dict[str, Any]:
    return run.inputs.get("publish") or {"to": ["bundle"]}


def publish_remote(run: Run, body: str) -> dict[str, Any]:
    """Publish what the options ask for; {} for the offline bundle. See the module doc."""
    options = settings(run)
    targets = [t for t in options.get("to", ["bundle"]) if t != "bundle"]
    if not targets:
        return {}
    parity = run.result("verify")["parity"]
    if not parity.get("passed"):  # the stage only runs after verify passed; never publish otherwise
        raise IntegrateError("refusing to publish: parity did not pass")
    dry = DryRun() if options.get("dry_run") else None
    out: dict[str, Any] = {}
    if "hub" in targets:
        out["hub"] = publish_hub(run, dry)
        if out["hub"]["pr_url"] not in body:
            body = body.rstrip() + (f"\n\n## Weights on the Hub\n\nConverted weights (diffusers format): {out['hub']['pr_url']}\n"
                                    f"(`{out['hub']['load']}`)\n")
    if "github" in targets:
        out["github"] = publish_github(run, body, dry)
    if dry is not None:
        out["dry_run"] = dry.calls
    return out


def publish_hub(run: Run, dry: DryRun | None) -> dict[str, Any]:
    options, planned = settings(run), run.result("plan")
    source = run.inputs["source"]
    repo_id = options.get("hub_repo")
    if repo_id is None and (Path(source).is_dir() or not re.fullmatch(r"[\w.-]+/[\w.-]+", source)):
        raise IntegrateError("--publish hub: SOURCE is a local folder; pass --hub-repo OWNER/NAME for the weights")
    subfolder = "" if repo_id else SUBFOLDER
    repo_id = repo_id or source
    client = HubClient(plan=dry.record if dry else None)
    title = f"Add diffusers weights for {planned['class_name']}"
    description = (f"Converted by integrate {__version__} from {source} to the diffusers folder format "
                   f"({planned['class_name']}); parity with the reference passed before this upload.")
    weights = Path(run.result("convert")["weights_dir"])
    result = client.publish_weights(repo_id, weights, subfolder, title, description, create_repo=bool(options.get("hub_repo")))
    return {"repo": result.repo_id, "subfolder": result.subfolder, "pr_url": result.pr_url, "pr_num": result.pr_num,
            "commit": result.commit, "created_repo": result.created_repo, "updated_pr": result.updated_pr,
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in result.files],
            "load": result.load_snippet()}


def publish_github(run: Run, body: str, dry: DryRun | None) -> dict[str, Any]:
    options, planned = settings(run), run.result("plan")
    target = run.inputs.get("target")
    if not target:
        raise IntegrateError("--publish github needs --target (a diffusers checkout): a standalone --out folder has no upstream")
    upstream_name = options.get("upstream") or upstream_of(Path(target))
    branch = planned["branch"]
    labels = tuple(options.get("labels") or DEFAULT_LABELS)
    title = f"[integrate] Add {planned['class_name']}"
    body = redact_text(body)  # a last net: no secret-shaped string or secret env value leaves in the PR
    if dry is not None:
        with dry.github(upstream_name):
            return _github_flow(GitHubClient(None, pace_s=(0, 0)), upstream_name, options.get("fork"), Path(target), branch, title, body,
                                labels, dry)
    client = GitHubClient.from_env(repo=upstream_name)
    return _github_flow(client, upstream_name, options.get("fork"), Path(target), branch, title, body, labels, None)


def _github_flow(client: GitHubClient, upstream_name: str, fork_name: str | None, checkout: Path, branch: str,
                 title: str, body: str, labels: tuple[str, ...], dry: DryRun | None) -> dict[str, Any]:
    upstream = client.repo(upstream_name)
    fork = client.ensure_fork(upstream, fork_name, poll_s=0 if dry else 2.0)
    existing = client.find_pull(upstream.full_name, fork.owner, branch)
    replaceable = {marker_fields(existing.body, PR_MARKER).get("head", "")} if existing and marker_fields(existing.body, PR_MARKER) else set()
    if dry is not None:
        dry.record("GIT", f"ls-remote {fork.clone_url} refs/heads/{branch}")
        dry.record("GIT", f"push {fork.clone_url} refs/heads/{branch}:refs/heads/{branch}",
                   "the token reaches git only in its environment (http.extraHeader), never argv")
        pushed = {"url": fork.clone_url, "commit": "{head_sha}", "pushed": True, "forced": False}
        head_sha = None
    else:
        result = push_branch(checkout, fork.clone_url, branch, client.token(), replaceable)
        pushed = {"url": result.url, "commit": result.local, "pushed": result.pushed, "forced": result.forced}
        head_sha = result.local
    pr = client.open_or_update_pull(upstream, fork.owner, branch, title, body, labels, head_sha=head_sha, existing=existing)
    return {"upstream": upstream.full_name, "fork": fork.full_name, "branch": branch, "push": pushed,
            "pr_number": pr.pull.number, "pr_url": pr.pull.html_url, "draft": pr.pull.draft, "created": pr.created,
            "labels": list(pr.pull.labels), "notes": list(pr.notes)}
