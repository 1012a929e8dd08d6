"""The job model and its store: what a job is, and every change of its state, each one atomic.

A job is one (repository, issue, source, revision): its id is a hash of the four, so the same
request made twice is the same job. It moves

    new --announce--> queued --claim--> running --finish--> succeeded | failed | cancelled
                        ^                  |
                        +---lease expired--+   (the worker died: another one re-runs it)

- `submit` de-duplicates: a job already new/queued/running is left alone, a succeeded one is
  never run again (at most once to completion), a failed or cancelled one starts a new attempt.
- `announce` is done by the server once the status comment exists; only then is the job queued,
  so a worker never races the server for the comment.
- `claim` gives the job to one worker with a lease (seconds), refused while the repository has
  `limit` jobs running; the worker renews the lease with `heartbeat`, which also carries the
  progress and tells the worker when a cancel was asked for.
- `reap` re-queues running jobs whose lease ran out (a SIGKILLed worker renews nothing).
- Every hand-over to the queue carries a `dispatch` number; a queue message whose number is not
  the job's current one is stale and does nothing, so a message sent twice never runs twice.

The records hold no secret: ids, names, the comment's id, progress and the outcome.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.bot.queue import KV, dumps
from agent.bot.triggers import Request

DELIVERY_TTL_S = 7 * 24 * 3600.0  # GitHub lets a delivery be redelivered for a few days
ACTIVE = ("new", "queued", "running")
FINAL = ("succeeded", "failed", "cancelled")
HISTORY_KEPT = 20


def job_id_for(repo: str, issue: int, source: str, revision: str) -> str:
    return hashlib.sha256(f"{repo}#{issue}|{source}@{revision}".encode()).hexdigest()[:20]


@dataclass
class Job:
    id: str
    repo: str
    issue: int
    source: str
    revision: str
    options: list[str]
    requester: str
    installation_id: int | None
    state: str = "new"
    attempt: int = 0  # how many times a worker started it
    dispatch: int = 0  # the queue message that may run it now
    comment_id: int | None = None
    comment_url: str | None = None
    worker: str | None = None
    lease_until: float | None = None
    created_at: float = 0.0
    requested_at: float = 0.0  # the latest request that (re)started it
    queued_at: float | None = None
    dispatched_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)  # stages and parity so far, from the run
    result: dict[str, Any] = field(default_factory=dict)  # pr_url | error + stage + hint
    cancel_requested_by: str | None = None
    history: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls(**json.loads(text))

    def to_json(self) -> str:
        return dumps(asdict(self))

    def note(self, what: str, now: float) -> None:
        self.history = [*self.history, f"{time.strftime('%H:%M:%S', time.gmtime(now))} {what}"][-HISTORY_KEPT:]


def _job_key(job_id: str) -> str:
    return f"job:{job_id}"


def _running_key(repo: str) -> str:
    return f"running:{repo}"


def _delivery_key(delivery: str) -> str:
    return f"delivery:{delivery}"


def _announce_key(job_id: str) -> str:
    return f"announce:{job_id}"


class JobStore:
    def __init__(self, kv: KV) -> None:
        self.kv = kv

    # reads -------------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        raw = self.kv.get(_job_key(job_id))
        return Job.from_json(raw) if raw else None

    def all(self) -> list[Job]:
        return [Job.from_json(v) for v in self.kv.scan("job:").values()]

    def running_in(self, repo: str) -> list[str]:
        return json.loads(self.kv.get(_running_key(repo)) or "[]")

    # changes -----------------------------------------------------------------------------------
    def _change(self, job_id: str, fn, repo: str | None = None):
        """Run fn(job, running_ids) -> result inside one transaction over the job (and its
        repository's running list when `repo` is given); fn edits both in place."""
        keys = [_job_key(job_id)] + ([_running_key(repo)] if repo else [])

        def apply(current):
            raw = current[keys[0]]
            if raw is None:
                return {}, None
            job = Job.from_json(raw)
            running = json.loads(current[keys[1]] or "[]") if repo else None
            before, running_before = job.to_json(), list(running or [])
            result = fn(job, running)
            updates = {}
            if job.to_json() != before:
                updates[keys[0]] = job.to_json()
            if repo and running != running_before:
                updates[keys[1]] = dumps(running) if running else None
            return updates, result

        return self.kv.transact(keys, apply)

    def submit(self, request: Request, delivery: str | None = None, now: float | None = None) -> tuple[Job | None, str]:
        """The job for a request, and what happened: "created", "retry" (a failed or cancelled
        job starts again), "duplicate" (already waiting or running), "done" (succeeded) or
        "redelivered" (this very delivery was seen before: nothing changes). A created or
        retried job is put on the server's list to announce, in the same transaction."""
        now = time.time() if now is None else now
        jid = job_id_for(request.repo, request.issue, request.source, request.revision)
        key, seen = _job_key(jid), _delivery_key(delivery) if delivery else None
        announce = _announce_key(jid)

        def apply(current):
            if seen and current[seen] is not None:
                return {}, (None, "redelivered")
            mark = {seen: (dumps({"at": now, "job": jid}), DELIVERY_TTL_S)} if seen else {}
            if current[key] is None:
                job = Job(jid, request.repo, request.issue, request.source, request.revision, list(request.options),
                          request.requester, request.installation_id, created_at=now, requested_at=now)
                job.note(f"requested by @{request.requester}", now)
                return {key: job.to_json(), announce: "1", **mark}, (job, "created")
            job = Job.from_json(current[key])
            if job.state in ACTIVE:
                return mark, (job, "duplicate")
            if job.state == "succeeded":
                return mark, (job, "done")
            job.state, job.options, job.requester, job.requested_at = "new", list(request.options), request.requester, now
            job.installation_id = request.installation_id or job.installation_id
            job.result, job.progress, job.cancel_requested_by = {}, {}, None
            job.worker = job.lease_until = job.started_at = job.finished_at = None
            job.note(f"requested again by @{request.requester}", now)
            return {key: job.to_json(), announce: "1", **mark}, (job, "retry")

        return self.kv.transact([key, *([seen] if seen else [])], apply)

    def first_delivery(self, delivery: str, what: dict[str, Any] | None = None, now: float | None = None) -> bool:
        """Record a delivery id; False when it was seen before (a redelivery or a duplicate)."""
        now = time.time() if now is None else now
        return self.kv.add(_delivery_key(delivery), dumps({"at": now, **(what or {})}), DELIVERY_TTL_S)

    def add_reply(self, delivery: str, reply: dict[str, Any], now: float | None = None) -> bool:
        """Queue one answer for the server to post (and record the delivery), atomically;
        False when the delivery was seen before."""
        now = time.time() if now is None else now
        seen, key = _delivery_key(delivery), f"reply:{delivery}"

        def apply(current):
            if current[seen] is not None:
                return {}, False
            return {seen: (dumps({"at": now, "reply": True}), DELIVERY_TTL_S), key: dumps(reply)}, True

        return self.kv.transact([seen, key], apply)

    def replies(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.kv.scan("reply:").items()}

    def reply_sent(self, key: str) -> None:
        self.kv.transact([key], lambda current: ({key: None}, None))

    def to_announce(self) -> list[str]:
        return sorted(k.removeprefix("announce:") for k in self.kv.scan("announce:"))

    def announce_later(self, job_id: str) -> None:
        key = _announce_key(job_id)
        self.kv.transact([key], lambda current: ({key: "1"}, None))

    def announce_done(self, job_id: str) -> None:
        key = _announce_key(job_id)
        self.kv.transact([key], lambda current: ({key: None}, None))

    def announced(self, job_id: str, comment_id: int, comment_url: str, now: float | None = None) -> Job | None:
        """The status comment exists: queue the job (returns it, with the dispatch number the
        queue message must carry), or None when it was cancelled meanwhile."""
        now = time.time() if now is None else now

        def fn(job, _):
            job.comment_id, job.comment_url = comment_id, comment_url
            if job.state != "new":
                return None
            job.state, job.queued_at, job.dispatched_at = "queued", now, now
            job.dispatch += 1
            return job

        return self._change(job_id, fn)

    def claim(self, job_id: str, dispatch: int, worker: str, lease_s: float, limit: int,
              now: float | None = None) -> tuple[str, Job | None]:
        """("run", job) when this worker now holds the job; ("wait", job) when its repository
        is at its limit of running jobs; ("stale", job|None) when the message is outdated."""
        now = time.time() if now is None else now
        job = self.get(job_id)
        if job is None:
            return "stale", None

        def fn(job, running):
            if job.state != "queued" or job.dispatch != dispatch:
                return "stale", job
            running[:] = [j for j in running if j != job.id]
            if len(running) >= limit:
                job.dispatched_at = now
                return "wait", job
            running.append(job.id)
            job.state, job.worker, job.lease_until, job.started_at = "running", worker, now + lease_s, now
            job.attempt += 1
            job.note(f"attempt {job.attempt} on {worker}", now)
            return "run", job

        return self._change(job_id, fn, repo=job.repo)

    def heartbeat(self, job_id: str, worker: str, lease_s: float, progress: dict | None = None,
                  now: float | None = None) -> Job | None:
        """Renew the lease (and record progress); None when the lease is no longer ours."""
        now = time.time() if now is None else now

        def fn(job, _):
            if job.state != "running" or job.worker != worker:
                return None
            job.lease_until = now + lease_s
            if progress is not None:
                job.progress = progress
            return job

        return self._change(job_id, fn)

    def finish(self, job_id: str, worker: str, state: str, result: dict[str, Any], now: float | None = None) -> Job | None:
        """End the attempt this worker holds; None (and nothing written) when it holds none."""
        assert state in FINAL
        now = time.time() if now is None else now
        job = self.get(job_id)
        if job is None:
            return None

        def fn(job, running):
            if job.state != "running" or job.worker != worker:
                return None
            running[:] = [j for j in running if j != job.id]
            job.state, job.result, job.finished_at, job.lease_until = state, result, now, None
            job.note(state, now)
            return job

        return self._change(job_id, fn, repo=job.repo)

    def set_comment(self, job_id: str, comment_id: int, comment_url: str) -> None:
        def fn(job, _):
            job.comment_id, job.comment_url = comment_id, comment_url

        self._change(job_id, fn)

    def cancel(self, repo: str, issue: int, by: str, now: float | None = None) -> list[Job]:
        """Cancel the issue's active jobs: waiting ones at once, running ones through their
        worker (which sees `cancel_requested_by` at its next heartbeat). Returns the jobs touched."""
        now = time.time() if now is None else now
        touched = []
        for job in self.all():
            if job.repo != repo or job.issue != issue or job.state not in ACTIVE:
                continue

            def fn(job, running):
                if job.state in ("new", "queued"):
                    job.state, job.finished_at = "cancelled", now
                    job.result = {"cancelled_by": by}
                    job.cancel_requested_by = by
                    job.note(f"cancelled by @{by}", now)
                    return job
                if job.state == "running" and not job.cancel_requested_by:
                    job.cancel_requested_by = by
                    job.note(f"cancel asked by @{by}", now)
                    return job
                return None

            changed = self._change(job.id, fn, repo=job.repo)
            if changed is not None:
                touched.append(changed)
                if changed.state == "cancelled":
                    self.announce_later(changed.id)  # the server edits its comment
        return touched

    def reap(self, now: float | None = None) -> list[Job]:
        """Re-queue running jobs whose worker stopped renewing its lease (returned with their
        new dispatch number, to be sent to the queue)."""
        now = time.time() if now is None else now
        out = []
        for job in self.all():
            if job.state != "running" or (job.lease_until or 0) > now:
                continue

            def fn(job, running):
                if job.state != "running" or (job.lease_until or 0) > now:
                    return None
                running[:] = [j for j in running if j != job.id]
                job.note(f"worker {job.worker} stopped renewing its lease; queued again", now)
                job.state, job.worker, job.lease_until = "queued", None, None
                job.dispatch += 1
                job.dispatched_at = now
                return job

            requeued = self._change(job.id, fn, repo=job.repo)
            if requeued is not None:
                out.append(requeued)
        return out

    def redispatch(self, job_id: str, dispatch: int, now: float | None = None) -> Job | None:
        """A queued job whose message `dispatch` was lost gets a new number (None if it moved on)."""
        now = time.time() if now is None else now

        def fn(job, _):
            if job.state != "queued" or job.dispatch != dispatch:
                return None
            job.dispatch += 1
            job.dispatched_at = now
            job.note("queue message lost; sent again", now)
            return job

        return self._change(job_id, fn)
