"""A worker SIGKILLed in the middle of a real job: the job's `integrate` child dies with it, the
lease runs out, another worker (another machine: its own work folder) runs the job again, and
the issue ends with exactly one draft PR and one status comment that links it.

Real parts throughout: `integrate bot serve` under uvicorn, two `integrate bot worker`
processes on the SQLite queue, the real `integrate` on the bundled example (resolved from the
stand-in Hub as acme/tiny-dit, sandboxed, on CPU), pushing to and opening the PR on the
stand-in GitHub as the App's installation."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from bot_support import REPO, bot_env, job_comments, label_event, serve, setup_github, wait_for, worker
from conftest import EXAMPLE
from github_server import GitHubStandIn
from hub_server import HubStandIn

from agent.bot.jobs import JobStore
from agent.bot.queue import open_backend

pytestmark = pytest.mark.slow


def _stage_done(run_json: Path, stage: str) -> bool:
    try:
        return json.loads(run_json.read_text())["stages"][stage]["status"] == "done"
    except (OSError, ValueError, KeyError):
        return False


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_sigkilled_worker_job_runs_again_with_one_pr_and_one_comment(tmp_path, diffusers_checkout):
    queue = f"sqlite://{tmp_path / 'bot' / 'queue.db'}"
    with GitHubStandIn(tmp_path / "github") as gh, HubStandIn() as hub:
        hub.add_repo("acme/tiny-dit", EXAMPLE)
        key = setup_github(gh, diffusers_checkout, issues=1)
        env = bot_env(gh.url, key, queue, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="0",
                      HF_HUB_DISABLE_XET="1")
        store = JobStore(open_backend(queue)[1])
        timing = ("--device", "cpu", "--lease", "6", "--heartbeat", "1", "--reap-every", "1")
        with serve(env, tmp_path) as (url, _):
            import requests
            from bot_support import delivery

            headers, body = delivery("issues", label_event(1))
            assert requests.post(url + "/webhook", data=body, headers=headers, timeout=5).status_code == 202
            job = wait_for(lambda: next((j for j in store.all() if j.state == "queued"), None), 30, "the job queued")

            first = worker(env, tmp_path, "worker-a", "--workdir", str(tmp_path / "machine-a"), *timing)
            run_json = tmp_path / "machine-a" / job.id / "runs" / f"bot-{job.id}" / "run.json"
            try:
                wait_for(lambda: _stage_done(run_json, "analyze"), 240, "the first attempt to finish analyze", every=0.2)
                assert store.get(job.id).state == "running"
                first.kill(signal.SIGKILL)  # mid-job: no goodbye, no lease renewal, no record
            finally:
                first.kill()
            # the child (and its sandboxes) died with the worker: nothing of attempt 1 keeps running
            wait_for(lambda: not _processes_mentioning(str(tmp_path / "machine-a")), 30, "attempt 1's processes to end")
            assert gh.pull_records(REPO) == []

            second = worker(env, tmp_path, "worker-b", "--workdir", str(tmp_path / "machine-b"), *timing)
            try:
                final = wait_for(lambda: (j := store.get(job.id)).state in ("succeeded", "failed") and j, 420,
                                 "the job to finish on the second worker", every=0.5)
            finally:
                second.kill()
            assert final.state == "succeeded", (final.result, second.log()[-3000:])

    assert final.attempt == 2 and any("stopped renewing its lease" in h for h in final.history), final.history
    prs = gh.pull_records(REPO)
    assert len(prs) == 1
    pr = prs[0]
    assert pr["draft"] is True and pr["head_repo"] == REPO and pr["head_ref"] == "integrate/tiny-dit"
    assert pr["user"] == "integrate-bot[bot]"  # opened as the App's installation
    assert final.result["pr_url"] == f"{gh.url}/{REPO}/pull/{pr['number']}"
    comments = job_comments(gh)
    assert len(comments) == 1 and comments[0]["id"] == final.comment_id
    assert f"draft PR {final.result['pr_url']}" in comments[0]["body"]
    assert "| publish | done |" in comments[0]["body"] and "verify passed" in comments[0]["body"]
    assert len(gh.calls("POST", r"/repos/huggingface/diffusers/issues/1/comments")) == 1  # created once, then edited
    # the App's private key and tokens are nowhere in what the runs left
    secrets = [key.splitlines()[1], *gh.installation_tokens]
    for folder in ("machine-a", "machine-b", "bot"):
        for path in (tmp_path / folder).rglob("*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 5_000_000:
                data = path.read_bytes()
                assert not any(s.encode() in data for s in secrets), path
    assert os.environ.get("GITHUB_APP_PRIVATE_KEY") is None
