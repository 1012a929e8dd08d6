"""The job store on both deployments, the same code: SQLite (the embedded default) and a real
redis-server that the test starts. Idempotency, leases, the per-repository limit, cancel,
redeliveries, and that two processes racing for one job never both get it."""

from __future__ import annotations

import multiprocessing
import shutil

import pytest
from bot_support import redis_server

from agent.bot.jobs import JobStore
from agent.bot.queue import open_backend
from agent.bot.triggers import Request

REDIS_MISSING = "redis-server is not installed (.ci/run installs it: apt-get install -y redis-server)"


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'queue.db'}"
        return
    if shutil.which("redis-server") is None:
        pytest.skip(REDIS_MISSING)
    with redis_server(tmp_path / "redis") as url:
        yield url


def _request(issue=1, source="acme/tiny-dit", revision="main", by="maintainer") -> Request:
    return Request("huggingface/diffusers", issue, source, revision, (), by, 7)


def test_one_job_per_request_and_at_most_one_completion(backend):
    huey, kv = open_backend(backend)
    store = JobStore(kv)
    job, what = store.submit(_request(), delivery="d1", now=100)
    assert what == "created" and job.state == "new"
    assert store.submit(_request(), delivery="d1", now=101) == (None, "redelivered")
    assert store.submit(_request(by="other"), delivery="d2", now=102)[1] == "duplicate"
    assert store.submit(_request(revision="v2"), delivery="d3", now=103)[1] == "created"  # another revision, another job
    assert store.to_announce() == sorted([job.id, store.submit(_request(revision="v2"))[0].id])

    queued = store.announced(job.id, 11, "https://c/11", now=110)
    assert queued.state == "queued" and queued.dispatch == 1 and queued.comment_id == 11
    verdict, running = store.claim(job.id, 1, "w1", lease_s=30, limit=1, now=120)
    assert verdict == "run" and running.attempt == 1 and running.worker == "w1"
    assert store.claim(job.id, 1, "w2", lease_s=30, limit=1, now=121)[0] == "stale"  # the same message twice
    assert store.finish(job.id, "w2", "succeeded", {}, now=130) is None  # not the holder
    done = store.finish(job.id, "w1", "succeeded", {"pr_url": "u"}, now=130)
    assert done.state == "succeeded" and store.running_in("huggingface/diffusers") == []
    assert store.submit(_request(), delivery="d4", now=140)[1] == "done"  # never runs twice to completion


def test_failed_jobs_start_again_and_keep_their_comment(backend):
    _, kv = open_backend(backend)
    store = JobStore(kv)
    job, _ = store.submit(_request(), now=1)
    store.announced(job.id, 5, "u", now=2)
    store.claim(job.id, 1, "w", 30, 1, now=3)
    store.finish(job.id, "w", "failed", {"error": "x"}, now=4)
    again, what = store.submit(_request(by="second"), delivery="later", now=10)
    assert what == "retry" and again.state == "new" and again.comment_id == 5 and again.requester == "second"
    assert again.result == {} and again.attempt == 1
    assert store.announced(job.id, 5, "u", now=11).dispatch == 2


def test_lease_expiry_requeues_and_the_old_holder_is_locked_out(backend):
    _, kv = open_backend(backend)
    store = JobStore(kv)
    job, _ = store.submit(_request(), now=0)
    store.announced(job.id, 1, "u", now=0)
    assert store.claim(job.id, 1, "dead", lease_s=10, limit=1, now=1)[0] == "run"
    assert store.heartbeat(job.id, "dead", 10, {"stages": {}}, now=5).lease_until == 15
    assert store.reap(now=14) == []
    requeued = store.reap(now=16)
    assert [j.id for j in requeued] == [job.id] and requeued[0].state == "queued" and requeued[0].dispatch == 2
    assert store.running_in("huggingface/diffusers") == []
    assert store.heartbeat(job.id, "dead", 10, now=17) is None  # the late worker learns it lost the job
    assert store.claim(job.id, 1, "w2", 10, 1, now=18)[0] == "stale"  # its old message is stale
    verdict, again = store.claim(job.id, 2, "w2", 10, 1, now=18)
    assert verdict == "run" and again.attempt == 2
    assert store.finish(job.id, "dead", "succeeded", {}, now=19) is None


def test_per_repository_limit_and_cancel(backend):
    _, kv = open_backend(backend)
    store = JobStore(kv)
    a, _ = store.submit(_request(issue=1), now=0)
    b, _ = store.submit(_request(issue=2), now=0)
    other, _ = store.submit(Request("acme/other-repo", 1, "acme/x", "main", (), "m", 7), now=0)
    for j in (a, b, other):
        store.announced(j.id, 1, "u", now=0)
    assert store.claim(a.id, 1, "w1", 30, limit=1, now=1)[0] == "run"
    verdict, waiting = store.claim(b.id, 1, "w2", 30, limit=1, now=2)
    assert verdict == "wait" and waiting.state == "queued"
    assert store.claim(other.id, 1, "w2", 30, limit=1, now=2)[0] == "run"  # another repository is not held back
    assert store.claim(b.id, 1, "w2", 30, limit=2, now=3)[0] == "run"  # a limit of two lets it through

    c, _ = store.submit(_request(issue=2, source="acme/second"), now=4)
    touched = store.cancel("huggingface/diffusers", 2, "maintainer", now=5)
    by_id = {j.id: j for j in touched}
    assert by_id[c.id].state == "cancelled"  # never started: cancelled at once
    assert by_id[b.id].state == "running" and by_id[b.id].cancel_requested_by == "maintainer"  # its worker stops it
    assert store.heartbeat(b.id, "w2", 30, now=6).cancel_requested_by == "maintainer"
    assert store.get(a.id).cancel_requested_by is None  # another issue's job is untouched
    assert c.id in store.to_announce()  # the server edits the cancelled job's comment


def _race(url: str, job_id: str, name: str, out) -> None:
    _, kv = open_backend(url)
    out.put((name, JobStore(kv).claim(job_id, 1, name, 30, limit=1)[0]))


def test_two_processes_racing_for_one_job(backend):
    _, kv = open_backend(backend)
    store = JobStore(kv)
    jobs = []
    for n in range(6):
        j, _ = store.submit(_request(issue=n + 1), now=0)
        store.announced(j.id, 1, "u", now=0)
        jobs.append(j)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(backend, j.id, f"w{k}", out)) for j in jobs for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    results = [out.get(timeout=5) for _ in procs]
    assert sum(r == "run" for _, r in results) == 1  # limit 1 for the repository: one job, one worker
    assert len(store.running_in("huggingface/diffusers")) == 1


def test_bad_queue_urls(tmp_path):
    from agent.errors import IntegrateError

    with pytest.raises(IntegrateError, match="must start with sqlite:// or redis://"):
        open_backend("amqp://x")
    with pytest.raises(IntegrateError, match="cannot reach redis://127.0.0.1:9/0"):
        open_backend("redis://user:pw@127.0.0.1:9/0")
