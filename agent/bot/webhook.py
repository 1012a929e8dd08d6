"""`integrate bot serve`: the GitHub App's webhook endpoint, an ASGI app (starlette) under uvicorn.

A delivery is answered as soon as it is recorded, well within GitHub's 10 s:
1. `X-Hub-Signature-256` is checked against the webhook secret with a constant-time compare;
   unsigned or wrongly signed: 401, nothing recorded or queued.
2. The event goes through triggers.decide, the same rules as the Actions deployment.
3. One store transaction records the delivery id with its effect: a job (created, or found:
   the same issue + source + revision is one job), a cancel, or a reply to post. A delivery id
   seen before (GitHub's redeliveries, a duplicate) changes nothing: 200 with `duplicate`.
Nothing in the request path talks to GitHub. The announcer thread does, after the answer: it
creates each new job's status comment ("waiting for a GPU worker") and only then puts the job
on the queue, edits the comments of jobs cancelled while waiting, and posts the replies. Its
to-do list lives in the store, so a restarted server finishes what a stopped one began.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from agent.bot.github_app import Clients
from agent.bot.jobs import JobStore
from agent.bot.status import StatusComment, reply
from agent.bot.triggers import TRIGGER_LABEL, Cancel, Ignored, Reply, Request, decide
from agent.bot.worker import enqueue
from agent.errors import IntegrateError

log = logging.getLogger("integrate.bot")
MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """X-Hub-Signature-256 is `sha256=` + hex HMAC-SHA256 of the raw body; compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.encode())


class Announcer(threading.Thread):
    """Posts what the request path recorded: status comments of new and cancelled jobs (then
    queues the new ones), and replies. Woken by each delivery; looks again every `every_s`."""

    def __init__(self, huey, store: JobStore, clients: Clients, every_s: float = 5.0) -> None:
        super().__init__(name="announcer", daemon=True)
        self.huey, self.store, self.clients, self.every_s = huey, store, clients, every_s
        self.wake = threading.Event()
        self._halt = threading.Event()
        self._status: dict[int, StatusComment] = {}

    def status(self, repo: str, installation_id: int | None) -> StatusComment:
        client = self.clients.client(repo, installation_id)
        return self._status.setdefault(id(client), StatusComment(client))

    def run(self) -> None:
        while not self._halt.is_set():
            self.wake.wait(self.every_s)
            self.wake.clear()
            try:
                self.once()
            except Exception:  # noqa: BLE001 - keep announcing; what failed stays on the list
                log.exception("announcer")

    def once(self) -> int:
        done = 0
        for job_id in self.store.to_announce():
            if self._halt.is_set():
                break
            try:
                self.announce(job_id)
                done += 1
            except IntegrateError as exc:
                log.warning("job %s: not announced yet: %s", job_id, exc.message)
        for key, r in sorted(self.store.replies().items()):
            try:
                reply(self.clients.client(r["repo"], r.get("installation_id")), r["repo"], r["issue"], r["kind"], r["user"], r["reason"])
                self.store.reply_sent(key)
                done += 1
            except Exception as exc:  # noqa: BLE001 - GaveUp or IntegrateError: try again next round
                log.warning("reply on %s#%s not posted yet: %s", r["repo"], r["issue"], exc)
        return done

    def announce(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None:
            self.store.announce_done(job_id)
            return
        status = self.status(job.repo, job.installation_id)
        info = status.show(job, must=True)
        if job.state == "new":
            queued = self.store.announced(job.id, info.id, info.html_url)
            if queued is not None:
                enqueue(self.huey, queued)
            else:  # cancelled between the request and now
                status.show(self.store.get(job.id), must=True)
        elif job.comment_id is None:
            self.store.set_comment(job.id, info.id, info.html_url)
        self.store.announce_done(job_id)

    def stop(self) -> None:
        self._halt.set()
        self.wake.set()


def create_app(huey, store: JobStore, secret: bytes, announcer: Announcer | None, label: str = TRIGGER_LABEL) -> Starlette:
    if not secret:
        raise IntegrateError("the webhook secret is empty: set GITHUB_WEBHOOK_SECRET (the App's webhook secret)")

    def record(event: str, delivery: str, payload: dict) -> tuple[int, dict]:
        decision = decide(event, payload, label)
        if isinstance(decision, Request):
            job, what = store.submit(decision, delivery)
            if what == "redelivered":
                return 200, {"duplicate": True}
            return 202, {"job": job.id, "state": job.state, "result": what}
        if isinstance(decision, Reply):
            fresh = store.add_reply(delivery, {"repo": decision.repo, "issue": decision.issue, "kind": decision.kind,
                                               "user": decision.user, "reason": decision.reason,
                                               "installation_id": decision.installation_id})
            return (202, {"reply": decision.kind}) if fresh else (200, {"duplicate": True})
        if not store.first_delivery(delivery, {"event": event}):
            return 200, {"duplicate": True}
        if isinstance(decision, Cancel):
            touched = store.cancel(decision.repo, decision.issue, decision.requester)
            return 202, {"cancelled": [j.id for j in touched]}
        assert isinstance(decision, Ignored)
        return 200, {"ignored": decision.reason}

    async def webhook(request: HttpRequest) -> JSONResponse:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY:
            return JSONResponse({"error": "payload too large"}, 413)
        body = await request.body()
        if not signature_ok(secret, body, request.headers.get("x-hub-signature-256")):
            return JSONResponse({"error": "missing or bad X-Hub-Signature-256"}, 401)
        delivery = request.headers.get("x-github-delivery", "").strip()
        event = request.headers.get("x-github-event", "").strip()
        if not delivery or len(delivery) > 100:
            return JSONResponse({"error": "missing X-GitHub-Delivery"}, 400)
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, 400)
        status, answer = await run_in_threadpool(record, event, delivery, payload)
        if status == 202 and announcer is not None:
            announcer.wake.set()
        return JSONResponse(answer, status)

    async def health(request: HttpRequest) -> JSONResponse:
        return JSONResponse({"ok": True, "queued_messages": await run_in_threadpool(huey.pending_count)})

    @asynccontextmanager
    async def lifespan(app):
        if announcer is not None:
            announcer.start()
        try:
            yield
        finally:
            if announcer is not None:
                announcer.stop()

    return Starlette(routes=[Route("/webhook", webhook, methods=["POST"]), Route("/", webhook, methods=["POST"]),
                             Route("/healthz", health, methods=["GET"])], lifespan=lifespan)
