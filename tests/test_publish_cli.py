"""`integrate SOURCE --target CHECKOUT --publish github,hub`, end to end through the real CLI, the
real clients and real git, against the stand-in GitHub and Hub servers.

One scenario, in the order a user meets it: a dry run (no token, nothing sent), a bad token, a
push the server rejects half-way (a pre-receive hook), `integrate resume` through rate limits to
one draft pull request, then a fresh re-run that updates that pull request instead of opening a
second. Throughout: no token in any file the runs leave, nor in any git process's argv.
"""

from __future__ import annotations

import base64
import json
import os
import re

import git
import pytest
from conftest import EXAMPLE, assert_one_line_error, integrate
from github_server import SECONDARY_LIMIT, GitHubStandIn
from hub_server import HubStandIn
from publish_helpers import files_containing, git_recorder, recorded_git_calls

GITHUB_TOKEN = "ghp_" + "Zx9" * 12
HF_TOKEN = "hf_" + "Kq7" * 11
BRANCH = "integrate/tiny-dit"
REJECT = "#!/bin/sh\necho 'remote: push rejected by the test' >&2\nexit 1\n"

pytestmark = pytest.mark.slow


def test_publish_github_and_hub_end_to_end(tmp_path, diffusers_checkout):
    recorder, log = git_recorder(tmp_path / "bin")
    with GitHubStandIn(tmp_path / "github") as gh, HubStandIn() as hub:
        gh.add_user("alice", GITHUB_TOKEN)
        gh.add_repo("huggingface/diffusers", source=diffusers_checkout)
        hub.add_user("alice", HF_TOKEN)
        base_env = {"GITHUB_API_URL": gh.url, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1",
                    "PATH": f"{recorder}{os.pathsep}{os.environ['PATH']}", "GITHUB_TOKEN": ""}
        tokens = {**base_env, "GITHUB_TOKEN": GITHUB_TOKEN, "HF_TOKEN": HF_TOKEN}
        args = [str(EXAMPLE), "--target", str(diffusers_checkout), "--llm", "none", "--publish", "github,hub",
                "--hub-repo", "alice/tiny-dit-diffusers", "--json"]
        checkout = git.Repo(diffusers_checkout)

        # 1. dry run: no token, no request reaches either server, every call printed
        dry = integrate(*args, "--dry-run", cwd=tmp_path, env=base_env)
        assert dry.returncode == 0, dry.stderr
        assert gh.requests == [] and hub.requests == []
        printed = [line.removeprefix("dry run: ") for line in dry.stderr.splitlines() if line.startswith("dry run: ")]
        assert "POST /repos/huggingface/diffusers/forks  {default_branch_only, name}" in printed
        assert "POST /repos/huggingface/diffusers/pulls  {base, body, draft, head, maintainer_can_modify, title}" in printed
        assert "POST /repos/huggingface/diffusers/issues/{number}/labels  [1 item]" in printed
        assert any(p.startswith("GIT push https://github.com/{you}/diffusers.git") for p in printed)
        assert any(p.startswith("POST /api/models/alice/tiny-dit-diffusers/commit/main?create_pr=1") for p in printed)
        assert json.loads(dry.stdout)["publish"]["remote"]["dry_run"] == printed
        checkout.git.branch("-D", BRANCH)

        # 2. a token GitHub refuses: one line, exit 2, the run stops at publish (the Hub PR is made first)
        bad = integrate(*args, cwd=tmp_path, env={**tokens, "GITHUB_TOKEN": "ghp_" + "no" * 18})
        assert_one_line_error(bad, "GitHub: could not read the repository huggingface/diffusers", "401 Bad credentials")
        run_dir = tmp_path / "runs" / json.loads(bad.stdout)["run_id"]
        run = json.loads((run_dir / "run.json").read_text())
        assert run["stage_reached"] == "publish" and run["stages"]["publish"]["status"] == "failed"
        assert len(hub.pull_requests["alice/tiny-dit-diffusers"]) == 1

        # 3. the fork is created, but the push is rejected half-way: one line, exit 2, no PR
        gh.fork_hooks = {"pre-receive": REJECT}
        rejected = integrate("resume", str(run_dir), "--json", cwd=tmp_path, env=tokens)
        assert_one_line_error(rejected, "git push to file://", "[remote rejected] (pre-receive hook declined)", "push rejected by the test")
        assert "alice/diffusers" in gh.repos and gh.branch_head("alice/diffusers", BRANCH) is None
        assert gh.pull_records("huggingface/diffusers") == []

        # 4. the server takes pushes again; resume rides out a 429 and a secondary rate limit
        gh.set_hook("alice/diffusers", "pre-receive", None)
        gh.fail("GET", r"/repos/huggingface/diffusers", 429, {"message": "Too many requests"}, {"Retry-After": "1"})
        gh.fail("POST", r"/repos/huggingface/diffusers/pulls", 403, SECONDARY_LIMIT, {"Retry-After": "1"})
        done = integrate("resume", str(run_dir), "--json", cwd=tmp_path, env=tokens)
        assert done.returncode == 0, done.stderr
        remote = json.loads(done.stdout)["publish"]["remote"]
        prs = gh.pull_records("huggingface/diffusers")
        assert len(prs) == 1
        pr = prs[0]
        assert pr["draft"] is True and pr["head_repo"] == "alice/diffusers" and pr["head_ref"] == BRANCH
        assert pr["base_ref"] == "main" and pr["state"] == "open"
        assert gh.branch_head("alice/diffusers", BRANCH) == checkout.commit(BRANCH).hexsha
        hub_url = f"{hub.url}/alice/tiny-dit-diffusers/discussions/1"
        assert hub_url in pr["body"] and remote["hub"]["pr_url"] == hub_url
        assert remote["github"]["pr_url"].endswith("/huggingface/diffusers/pull/1") and remote["github"]["created"]
        assert "labels not applied" in remote["github"]["notes"][0]  # alice cannot label upstream
        assert [r["status"] for r in gh.calls("POST", r"/repos/huggingface/diffusers/pulls")] == [403, 201]
        assert len(hub.pull_requests["alice/tiny-dit-diffusers"]) == 1  # the resumed hub step updated its own PR

        # every call a real first publish made was in the dry run's printout
        dry_calls = {re.sub(r"\{number\}", "1", p.split("  ")[0].replace("{you}", "alice").split("?")[0]) for p in printed}
        real = {f"{r['method']} {r['path']}" for r in gh.requests if r["status"] not in (401, 403, 429)}
        assert real <= dry_calls, real - dry_calls

        # 5. a fresh run of the same model (its branch rebuilt) updates the same PR, no second one
        checkout.git.branch("-D", BRANCH)
        rerun = integrate(*args, cwd=tmp_path, env=tokens)
        assert rerun.returncode == 0, rerun.stderr
        again = json.loads(rerun.stdout)["publish"]["remote"]["github"]
        assert not again["created"] and again["pr_number"] == 1 and again["push"]["forced"]
        assert len(gh.pull_records("huggingface/diffusers")) == 1
        assert len(gh.calls("PATCH", r"/repos/huggingface/diffusers/pulls/1")) == 1
        assert gh.branch_head("alice/diffusers", BRANCH) == checkout.commit(BRANCH).hexsha
        assert len(hub.pull_requests["alice/tiny-dit-diffusers"]) == 1

    # no token in any file the runs left (run folders, the checkout's git config) ...
    secrets = [GITHUB_TOKEN, HF_TOKEN, base64.b64encode(f"x-access-token:{GITHUB_TOKEN}".encode()).decode()]
    assert files_containing(tmp_path / "runs", secrets) == []
    assert files_containing(diffusers_checkout / ".git", secrets) == []
    # ... nor in the argv of any git process the runs started
    calls = recorded_git_calls(log)
    assert any(c["argv"][:1] == ["push"] for c in calls)
    assert [c["argv"] for c in calls if any(s in a for s in secrets for a in c["argv"])] == []
