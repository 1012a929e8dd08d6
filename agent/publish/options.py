"""The run command's publishing options, checked before any work starts (no network, no
heavy imports): where to publish, which fork and repositories, and that credentials exist."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from agent.errors import IntegrateError

TARGETS = ("bundle", "github", "hub")
REPO_NAME = re.compile(r"[\w.-]+/[\w.-]+")


def parse_targets(values: tuple[str, ...] | list[str]) -> list[str]:
    """--publish values (repeatable, or comma-separated) in a fixed order: hub before github,
    so the GitHub pull request can link the Hub one."""
    chosen = {v.strip() for value in values for v in value.split(",") if v.strip()} or {"bundle"}
    unknown = sorted(chosen - set(TARGETS))
    if unknown:
        raise IntegrateError(f"--publish must be bundle, github or hub (comma-separated or repeated), not {', '.join(unknown)}")
    return [t for t in TARGETS if t in chosen]


def check_repo_name(option: str, value: str | None) -> str | None:
    if value is not None and not REPO_NAME.fullmatch(value):
        raise IntegrateError(f"{option} must be OWNER/NAME, not {value!r}")
    return value


def publish_options(publish: tuple[str, ...], fork: str | None, upstream: str | None, hub_repo: str | None,
                    labels: tuple[str, ...], dry_run: bool, source_is_hub_id: bool, has_target: bool,
                    env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The `publish` entry of a run's inputs. Refuses, in one line, what could only fail at the
    end of a long run: github without --target, hub from a local folder without --hub-repo,
    missing credentials (unless --dry-run, which needs none)."""
    targets = parse_targets(publish)
    remote = [t for t in targets if t != "bundle"]
    for option, value in (("--fork", fork), ("--upstream", upstream), ("--hub-repo", hub_repo)):
        check_repo_name(option, value)
    if dry_run and not remote:
        raise IntegrateError("--dry-run prints the calls of --publish github or hub; with the offline bundle there are none")
    if "github" in remote and not has_target:
        raise IntegrateError("--publish github needs --target (a diffusers checkout): a standalone --out folder has no upstream")
    if (fork or upstream or labels) and "github" not in remote:
        raise IntegrateError("--fork, --upstream and --label apply to --publish github")
    if hub_repo and "hub" not in remote:
        raise IntegrateError("--hub-repo applies to --publish hub")
    if "hub" in remote and not hub_repo and not source_is_hub_id:
        raise IntegrateError("--publish hub: SOURCE is a local folder; pass --hub-repo OWNER/NAME for the weights")
    if not dry_run:
        if "github" in remote and not (env.get("GITHUB_TOKEN") or env.get("GITHUB_APP_ID")):
            raise IntegrateError("--publish github: no GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID with "
                                 "GITHUB_APP_PRIVATE_KEY (or GITHUB_APP_PRIVATE_KEY_FILE); or try --dry-run")
        if "hub" in remote:
            from huggingface_hub import get_token

            if not get_token():
                raise IntegrateError("--publish hub: no Hugging Face token: set HF_TOKEN (write access); or try --dry-run")
    return {"to": targets, "fork": fork, "upstream": upstream, "hub_repo": hub_repo, "labels": list(labels) or None,
            "dry_run": dry_run}
