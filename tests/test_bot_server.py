"""`integrate bot serve` under uvicorn on 127.0.0.1 and `integrate bot worker`, as processes,
on both deployments (SQLite file; a real redis-server), against the stand-in GitHub REST server
with a GitHub App installation. The job's command is the stand-in integrate of bot_support
(fast, opens no PR): this test is about the webhook, the queue, the workers and the one status
comment; test_bot_sigkill.py runs the real `integrate` on the bundled example."""

from __future__ import annotations

import json
import shutil

import pytest
import requests
from bot_support import (
    REPO,
    WEBHOOK_SECRET,
    bot_env,
    comment_event,
    delivery,
    fake_runs,
    job_comments,
    label_event,
    redis_server,
    serve,
    setup_github,
    wait_for,
    worker,
    write_fake_integrate,
)
from github_server import SECONDARY_LIMIT, GitHubStandIn
from publish_helpers import files_containing, small_repo

from agent.bot.jobs import JobStore
from agent.bot.queue import open_backend

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "redis"])
def queue_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'bot' / 'queue.db'}"
        return
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/run installs it: apt-get install -y redis-server)")
    with redis_server(tmp_path / "redis") as url:
        yield url


def post(url: str, event: str, payload: dict, **kw) -> requests.Response:
    headers, body = delivery(event, payload, **kw)
    return requests.post(url + "/webhook", data=body, headers=headers, timeout=5)


def test_server_and_workers_end_to_end(tmp_path, queue_url):
    with GitHubStandIn(tmp_path / "github") as gh:
        key = setup_github(gh, small_repo(tmp_path / "upstream"), issues=4)
        gh.token_ttl_s = 22  # PyGithub renews an installation token 20 s before it expires: here, every couple of seconds
        log = tmp_path / "fake-runs.jsonl"
        env = bot_env(gh.url, key, queue_url, FAKE_LOG=str(log), FAKE_STAGE_S="0.3")
        store = JobStore(open_backend(queue_url)[1])
        with serve(env, tmp_path) as (url, server):
            # 1. forged and unsigned deliveries: 401, nothing recorded, nothing queued
            assert post(url, "issue_comment", comment_event(1, "/integrate acme/tiny-dit"), secret="wrong-secret").status_code == 401
            assert post(url, "issue_comment", comment_event(1, "/integrate acme/tiny-dit"), secret=None).status_code == 401
            assert store.all() == [] and store.kv.scan("delivery:") == {}

            # 2. a label and a maintainer's command: two jobs, each with one "waiting" comment
            r1 = post(url, "issues", label_event(1), delivery_id="d-1")
            assert r1.status_code == 202 and r1.json()["result"] == "created"
            assert post(url, "issues", label_event(1), delivery_id="d-1").json() == {"duplicate": True}  # redelivery
            r2 = post(url, "issue_comment", comment_event(2, "/integrate acme/tiny-dit --device cpu"))
            assert r2.status_code == 202
            same = post(url, "issue_comment", comment_event(2, "/integrate acme/tiny-dit --device cpu", user="other-maintainer"))
            assert same.json()["result"] == "duplicate" and same.json()["job"] == r2.json()["job"]
            wait_for(lambda: len(job_comments(gh)) == 2 and all(j.state == "queued" for j in store.all()), 30, "two queued jobs")
            assert all("**Waiting for a GPU worker**" in c["body"] for c in job_comments(gh))

            # 3. outsiders: one polite comment per issue, however often they ask; nothing runs
            for n in range(3):
                assert post(url, "issue_comment", comment_event(3, f"/integrate acme/x{n}", user="visitor", association="NONE")).status_code == 202
            refusals = wait_for(lambda: [c for c in gh.issue_comments if "integrate:bot-refused" in c["body"]], 30, "the refusal")
            assert len(refusals) == 1 and "Thanks @visitor!" in refusals[0]["body"]

            # 4. a job cancelled while it waits: its comment says so, no worker will run it
            r4 = post(url, "issue_comment", comment_event(4, "/integrate acme/cancel-me"))
            wait_for(lambda: store.get(r4.json()["job"]).state == "queued", 30, "job 4 queued")
            assert post(url, "issue_comment", comment_event(4, "/integrate cancel")).json()["cancelled"] == [r4.json()["job"]]
            wait_for(lambda: any("**Cancelled** by @maintainer" in c["body"] for c in job_comments(gh, 4)), 30, "cancelled comment")

            # 5. two workers (the limit is one job per repository at a time) run the two jobs
            gh.fail("PATCH", r"/repos/huggingface/diffusers/issues/comments/\d+", 403, SECONDARY_LIMIT, {"Retry-After": "1"})
            gh.fail("PATCH", r"/repos/huggingface/diffusers/issues/comments/\d+", 502, {"message": "Server Error"})
            fake = write_fake_integrate(tmp_path)
            workers = [worker(env, tmp_path, f"worker-{n}", "--workdir", str(tmp_path / f"work-{n}"), "--device", "cpu",
                              "--integrate-command", fake, "--heartbeat", "0.5", "--lease", "5", "--reap-every", "1")
                       for n in range(2)]
            try:
                done = wait_for(lambda: [j for j in store.all() if j.state == "succeeded"] if sum(
                    j.state == "succeeded" for j in store.all()) == 2 else None, 90, "both jobs to finish")
            finally:
                for w in workers:
                    w.kill()
            logs = "".join(w.log() for w in workers)
            assert "Traceback" not in logs, logs

    # exactly one run per job, one at a time (limit 1), never the cancelled one
    runs = fake_runs(log)
    assert sorted(r["run"] for r in runs) == sorted(f"bot-{j.id}" for j in done)
    assert not any(r["secret_seen"] for r in runs)  # the webhook secret never reaches a job
    assert all(r["app_id"] == "4242" for r in runs)  # the App's identity does (to publish)
    assert ["--device", "cpu"] == runs[0]["argv"][-2:] or ["--device", "cpu"] == runs[1]["argv"][-2:]
    spans = sorted((j.started_at, j.finished_at) for j in done)
    assert spans[0][1] <= spans[1][0], spans  # per-repository limit: the second began after the first ended

    # one comment per job, edited in place to the end: the PR link, the stage table, parity
    for j in done:
        comments = job_comments(gh, j.issue)
        assert len(comments) == 1 and comments[0]["id"] == j.comment_id
        body = comments[0]["body"]
        assert f"draft PR https://stand-in.invalid/pull/bot-{j.id}" in body
        assert "| verify | done |" in body and "Parity so far:" in body
    edits = [e["status"] for e in gh.calls("PATCH", r"/repos/huggingface/diffusers/issues/comments/\d+")]
    first = edits.index(403)
    assert edits[first:first + 3] == [403, 502, 200], edits  # rate limited, then a server error: retried, then edited
    assert len(gh.calls("POST", r"/repos/huggingface/diffusers/issues/\d+/comments")) == 4  # 3 jobs + 1 refusal, no more
    assert len(gh.calls("POST", r"/app/installations/777/access_tokens")) >= 2  # renewed before expiry
    assert not [c for c in gh.requests if c["status"] == 401]
    assert store.get(r4.json()["job"]).state == "cancelled"

    # no secret in anything the bot wrote
    secrets = [WEBHOOK_SECRET, key.splitlines()[1], *gh.installation_tokens]
    assert files_containing(tmp_path / "bot", secrets) == [] if queue_url.startswith("sqlite") else True
    for n in range(2):
        assert files_containing(tmp_path / f"work-{n}", secrets) == []
    assert not any(s in json.dumps(gh.issue_comments) for s in secrets)


def test_actions_run_event(tmp_path):
    """The Actions deployment's step (`integrate bot run-event`) with the workflow's GITHUB_TOKEN:
    one status comment edited to the end; an outsider's command gets the one refusal."""
    from conftest import integrate

    token = "ghs_" + "Tk9" * 12
    with GitHubStandIn(tmp_path / "github") as gh:
        gh.add_user("github-actions[bot]", token)
        gh.add_repo(REPO, source=small_repo(tmp_path / "upstream"))
        gh.add_issue(REPO, "model request", "https://huggingface.co/acme/tiny-dit")
        log = tmp_path / "runs.jsonl"
        env = {"GITHUB_API_URL": gh.url, "GITHUB_TOKEN": token, "FAKE_LOG": str(log), "GITHUB_WEBHOOK_SECRET": ""}
        fake = write_fake_integrate(tmp_path)
        events = {"member": comment_event(1, "/integrate acme/tiny-dit"),
                  "outsider": comment_event(1, "/integrate acme/tiny-dit", user="visitor", association="NONE")}
        for name, payload in events.items():
            (tmp_path / f"{name}.json").write_text(json.dumps(payload))
        common = ["--event-name", "issue_comment", "--target", str(tmp_path / "upstream" / "checkout"), "--device", "cpu",
                  "--workdir", str(tmp_path / "work"), "--integrate-command", fake]
        ran = integrate("bot", "run-event", "--event", str(tmp_path / "member.json"), *common, cwd=tmp_path, env=env)
        assert ran.returncode == 0, ran.stderr
        refused = integrate("bot", "run-event", "--event", str(tmp_path / "outsider.json"), *common, cwd=tmp_path, env=env)
        assert refused.returncode == 0, refused.stderr
        again = integrate("bot", "run-event", "--event", str(tmp_path / "outsider.json"), *common, cwd=tmp_path, env=env)
        assert again.returncode == 0, again.stderr
    comments = job_comments(gh, 1)
    assert len(comments) == 1 and "draft PR https://stand-in.invalid/pull/bot-" in comments[0]["body"]
    assert "| publish | done |" in comments[0]["body"]
    assert len([c for c in gh.issue_comments if "integrate:bot-refused" in c["body"]]) == 1
    runs = fake_runs(log)
    assert len(runs) == 1 and "--fork" in runs[0]["argv"] and runs[0]["argv"][runs[0]["argv"].index("--fork") + 1] == REPO
    assert token not in json.dumps(gh.issue_comments)
