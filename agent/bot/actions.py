"""`integrate bot run-event`: the job of the GitHub Actions deployment, in one process.

The workflow (workflow.py) has already filtered the event with `if:` expressions; this applies
the full rules again (triggers.decide), then runs the job the way a worker does: one status
comment (found by its job marker, so a second run for the same request edits the same one),
edited as stages finish, and `integrate` as a child on the checkout Actions made. Actions
runs one job per issue at a time (the workflow's concurrency group) and cancels by signal: a
SIGTERM or SIGINT stops the child and leaves the comment saying "cancelled".
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from pathlib import Path

from agent.bot import execution
from agent.bot.github_app import Clients
from agent.bot.jobs import Job, job_id_for
from agent.bot.status import StatusComment, reply
from agent.bot.triggers import TRIGGER_LABEL, Cancel, Ignored, Reply, Request, decide
from agent.errors import IntegrateError


def read_event(event_name: str | None, event_path: str | None) -> tuple[str, dict]:
    name = event_name or os.environ.get("GITHUB_EVENT_NAME", "")
    path = event_path or os.environ.get("GITHUB_EVENT_PATH", "")
    if not name or not path:
        raise IntegrateError("no event: pass --event-name and --event (Actions sets GITHUB_EVENT_NAME and GITHUB_EVENT_PATH)")
    try:
        return name, json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise IntegrateError(f"cannot read the event payload {path}: {exc}") from None


def run_event(event_name: str, payload: dict, target: Path, settings: execution.ExecutionSettings,
              label: str = TRIGGER_LABEL, clients: Clients | None = None, every_s: float = 10.0, say=print) -> int:
    """Handle one event; the exit status: 0 when done (or nothing to do), else the run's."""
    decision = decide(event_name, payload, label)
    if isinstance(decision, Ignored):
        say(f"nothing to do: {decision.reason}")
        return 0
    if isinstance(decision, Cancel):
        say("a cancel: the workflow's cancel job stops this issue's run")
        return 0
    clients = clients or Clients()
    if isinstance(decision, Reply):
        reply(clients.client(decision.repo), decision.repo, decision.issue, decision.kind, decision.user, decision.reason)
        say(f"answered on {decision.repo}#{decision.issue}: {decision.kind}")
        return 0
    assert isinstance(decision, Request)
    now = time.time()
    job = Job(job_id_for(decision.repo, decision.issue, decision.source, decision.revision), decision.repo, decision.issue,
              decision.source, decision.revision, list(decision.options), decision.requester, None, state="running",
              attempt=1, created_at=now, requested_at=now, started_at=now)
    client = clients.client(job.repo)
    status = StatusComment(client)
    info = status.show(job, must=True)
    job.comment_id, job.comment_url = info.id, info.html_url
    say(f"status comment: {info.html_url}")

    stopping: list[int] = []

    def on_signal(signum, frame) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        folder = execution.job_folder(settings, job)
        folder.mkdir(parents=True, exist_ok=True)
        argv = execution.command(settings, job, target, resume=False)
        env = {**os.environ, **clients.child_env(None), **settings.env}
        proc = execution.start(argv, folder, env)
        run_dir = execution.run_folder(settings, job)

        def tick() -> bool:
            job.progress = execution.progress(run_dir)
            status.show(job)
            return bool(stopping)

        returncode = execution.supervise(proc, every_s, tick)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    job.progress = execution.progress(run_dir)
    job.finished_at = time.time()
    if returncode is None:
        job.state, job.result = "cancelled", {"cancelled_by": None}
        status.show(job, must=True)
        return 130
    stdout, stderr = execution.read_output(folder)
    job.state, job.result = execution.outcome(job, returncode, stdout, stderr)
    status.show(job, must=True)
    say(f"{job.state}: {job.result.get('pr_url') or job.result.get('error')}")
    return 0 if job.state == "succeeded" else (returncode or 2)


def default_workdir() -> Path:
    return Path(os.environ.get("RUNNER_TEMP") or tempfile.gettempdir()) / "integrate-bot"
