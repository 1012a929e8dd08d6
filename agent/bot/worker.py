"""`integrate bot worker`: huey's consumer, taking job ids off the queue and running them.

For each message (job id, dispatch number) a worker thread:
1. claims the job in the store (a lease; refused while the repository is at its limit of
   running jobs, then the message comes back after `wait_s`; ignored when stale);
2. prepares the job's folder (a clone of the issue's repository, or the run to resume) and
   starts `integrate` as a child (execution.py);
3. while the child runs, a lease keeper thread renews the lease every `heartbeat_s` with the
   run's progress; the job thread edits the status comment when a stage finished, and stops
   the child when a cancel was asked for or the lease was lost;
4. records the outcome (only if it still holds the lease) and writes the comment's last edit.

Every worker also reaps: a running job whose lease ran out (its worker was SIGKILLed, its
machine lost) is queued again under a new dispatch number, and a queued job whose message was
lost is sent again. So a job is never lost, and never runs twice at once: the one that lost
its lease stops, and a stale message does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from agent.bot import execution
from agent.bot.github_app import Clients
from agent.bot.jobs import Job, JobStore
from agent.bot.status import StatusComment
from agent.errors import IntegrateError

log = logging.getLogger("integrate.bot")
TASK_NAME = "integrate.bot.run_job"
SERVER_ONLY_VARIABLES = ("GITHUB_WEBHOOK_SECRET",)


@dataclass(frozen=True)
class Timing:
    lease_s: float = 120.0  # a worker that has not renewed its lease for this long is taken for dead
    heartbeat_s: float = 10.0  # lease renewal and progress
    reap_s: float = 20.0  # how often each worker looks for dead workers' jobs
    wait_s: float = 15.0  # a job held back by its repository's limit is looked at again after this
    lost_after_s: float = 300.0  # a queued job with no message in the queue for this long is sent again
    limit: int = 1  # running jobs per repository


_current: Worker | None = None  # the worker of this process, for the huey task
_tasks: dict[int, Any] = {}


def _run_job(job_id: str, dispatch: int) -> None:
    if _current is None:
        raise RuntimeError("this process has no worker (start it with `integrate bot worker`)")
    _current.handle(job_id, dispatch)


def job_task(huey):
    """The queue's one task, registered once per huey instance: enqueue with task(job_id, dispatch)."""
    if id(huey) not in _tasks:
        _tasks[id(huey)] = huey.task(name=TASK_NAME)(_run_job)
    return _tasks[id(huey)]


def enqueue(huey, job: Job) -> None:
    job_task(huey)(job.id, job.dispatch)


class LeaseKeeper(threading.Thread):
    """Renews one job's lease with its progress until told to stop; flags a lost lease or a
    cancel for the job thread."""

    def __init__(self, store: JobStore, job: Job, worker: str, timing: Timing, run_dir) -> None:
        super().__init__(name=f"lease-{job.id}", daemon=True)
        self.store, self.job, self.worker, self.timing, self.run_dir = store, job, worker, timing, run_dir
        self.lost = False
        self.changed = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.timing.heartbeat_s):
            self.renew()
            if self.lost:
                return

    def renew(self) -> None:
        try:
            job = self.store.heartbeat(self.job.id, self.worker, self.timing.lease_s, execution.progress(self.run_dir))
        except Exception as exc:  # noqa: BLE001 - a store hiccup: try again at the next beat
            log.warning("job %s: lease not renewed: %s", self.job.id, exc)
            return
        if job is None:
            self.lost = True
        else:
            self.job = job
        self.changed.set()

    def stop(self) -> None:
        self._halt.set()


class Worker:
    def __init__(self, huey, store: JobStore, clients: Clients, settings: execution.ExecutionSettings,
                 timing: Timing = Timing(), name: str | None = None) -> None:
        self.huey, self.store, self.clients, self.settings, self.timing = huey, store, clients, settings, timing
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._status: dict[int, StatusComment] = {}
        self._lock = threading.Lock()

    def status(self, job: Job) -> StatusComment:
        client = self.clients.client(job.repo, job.installation_id)
        with self._lock:
            return self._status.setdefault(id(client), StatusComment(client))

    def handle(self, job_id: str, dispatch: int) -> None:
        name = f"{self.name}:{threading.get_ident()}"
        verdict, job = self.store.claim(job_id, dispatch, name, self.timing.lease_s, self.timing.limit)
        if verdict == "stale":
            log.info("job %s: message %s is stale (%s); nothing to do", job_id, dispatch, job.state if job else "no such job")
            return
        if verdict == "wait":
            job_task(self.huey).schedule((job_id, dispatch), delay=self.timing.wait_s)
            return
        log.info("job %s: %s on %s#%s, attempt %s", job.id, job.source, job.repo, job.issue, job.attempt)
        try:
            self._run(job, name)
        except Exception as exc:  # noqa: BLE001 - the job must end recorded, whatever broke
            log.exception("job %s: worker error", job.id)
            done = self.store.finish(job.id, name, "failed", {"error": f"the worker failed: {exc.__class__.__name__}: {exc}",
                                                              "stage": None, "hint": "look at the worker's log; comment "
                                                              f"`/integrate {job.source}` to try again"})
            if done:
                self.status(done).show(done)

    def _run(self, job: Job, name: str) -> None:
        keeper = LeaseKeeper(self.store, job, name, self.timing, execution.run_folder(self.settings, job))
        keeper.start()  # before the clone, which may take longer than a lease
        try:
            done = self._attempt(job, name, keeper)
        finally:
            keeper.stop()
        if done:
            log.info("job %s: %s", job.id, done.state)
            self.status(done).show(done, must=True)

    def _attempt(self, job: Job, name: str, keeper: LeaseKeeper) -> Job | None:
        """Run the job's child to its end; the finished job, or None when the lease was lost."""
        status = self.status(job)
        status.show(job)
        client = self.clients.client(job.repo, job.installation_id)
        folder = execution.job_folder(self.settings, job)
        try:
            upstream = client.repo(job.repo)
            argv = execution.prepare(self.settings, job, upstream.clone_url, client.token())
        except IntegrateError as exc:
            return self.store.finish(job.id, name, "failed", {"error": exc.message, "stage": "checkout",
                                                               "hint": execution.hint(job, "checkout", 2)})
        env = {k: v for k, v in os.environ.items() if k not in SERVER_ONLY_VARIABLES}
        env.update(self.clients.child_env(job.installation_id))
        env.update(self.settings.env)
        proc = execution.start(argv, folder, env)

        def tick() -> bool:
            if keeper.changed.is_set():
                keeper.changed.clear()
                if keeper.lost or keeper.job.cancel_requested_by:
                    return True
                status.show(keeper.job)
            return False

        returncode = execution.supervise(proc, min(1.0, self.timing.heartbeat_s), tick)
        keeper.stop()
        if not keeper.lost:
            keeper.renew()  # the last progress, and a last look for a cancel
        if keeper.lost:
            log.warning("job %s: lease lost (another worker has it now); stopped without recording", job.id)
            return None
        if returncode is None or keeper.job.cancel_requested_by:
            return self.store.finish(job.id, name, "cancelled", {"cancelled_by": keeper.job.cancel_requested_by})
        stdout, stderr = execution.read_output(folder)
        state, result = execution.outcome(job, returncode, stdout, stderr)
        return self.store.finish(job.id, name, state, result)


class Reaper(threading.Thread):
    """Re-queues jobs of dead workers and re-sends lost queue messages, every `reap_s`."""

    def __init__(self, huey, store: JobStore, timing: Timing, status_for=None) -> None:
        super().__init__(name="reaper", daemon=True)
        self.huey, self.store, self.timing, self.status_for = huey, store, timing, status_for
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.timing.reap_s):
            try:
                self.once()
            except Exception:  # noqa: BLE001 - keep reaping
                log.exception("reaper")

    def once(self, now: float | None = None) -> list[Job]:
        now = time.time() if now is None else now
        sent = []
        for job in self.store.reap(now):
            log.warning("job %s: worker %s stopped renewing its lease; queued again", job.id, job.history[-1] if job.history else "")
            enqueue(self.huey, job)
            sent.append(job)
            if self.status_for is not None:
                self.status_for(job).show(job)
        stale = [j for j in self.store.all() if j.state == "queued" and now - (j.dispatched_at or now) > self.timing.lost_after_s]
        if stale:
            in_queue = {(t.args[0], t.args[1]) for t in [*self.huey.pending(), *self.huey.scheduled()] if len(t.args) == 2}
            for job in stale:
                if (job.id, job.dispatch) not in in_queue:
                    again = self.store.redispatch(job.id, job.dispatch, now)
                    if again is not None:
                        enqueue(self.huey, again)
                        sent.append(again)
        return sent

    def stop(self) -> None:
        self._halt.set()


def run_worker(huey, worker: Worker, threads: int = 1, poll_max_s: float = 2.0) -> None:
    """Run huey's consumer with `threads` job threads and a reaper until SIGINT/SIGTERM."""
    global _current
    _current = worker
    job_task(huey)
    reaper = Reaper(huey, worker.store, worker.timing, worker.status)
    reaper.start()
    consumer = huey.create_consumer(workers=threads, worker_type="thread", periodic=False, max_delay=poll_max_s,
                                    check_worker_health=True)
    try:
        consumer.run()
    finally:
        reaper.stop()
