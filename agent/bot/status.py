"""The one status comment of a job: rendered from the job record, edited in place.

The comment is created when the job is queued ("waiting for a GPU worker") and then only
edited: when a stage finishes (stage, time, parity so far), and at the end with the draft PR's
link, or where the run stopped, its one-line reason and what to do. It carries a hidden marker
with the job id, so the comment is found again after a restart and a second one is never made.
Everything shown is redacted (no token can reach an issue), and GitHub's rate limits and
errors are retried with backoff (PyGithub's GitHub-aware retry, then a few slower tries here).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from agent.bot.jobs import Job
from agent.errors import IntegrateError
from agent.publish.github import CommentInfo, GitHubClient, marker_line
from agent.publish.retry import GaveUp, RetryPolicy, call_with_retry
from agent.redact import redact_text

log = logging.getLogger("integrate.bot")
STAGES = ("resolve", "analyze", "plan", "scaffold", "port", "refine", "convert", "verify", "publish")
COMMENT_RETRY = RetryPolicy(retries=4, backoff_s=2.0, max_wait_s=120.0)


def marker_kind(job_id: str) -> str:
    return f"integrate:bot-job-{job_id}"


def _clock(ts: float | None) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(ts)) if ts else "?"


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def _stage_table(progress: dict[str, Any]) -> list[str]:
    stages = progress.get("stages") or {}
    if not stages:
        return []
    rows = ["| stage | status | time |", "|---|---|---|"]
    for name in STAGES:
        entry = stages.get(name)
        if entry:
            rows.append(f"| {name} | {entry.get('status', '?')} | {_seconds(entry.get('seconds'))} |")
    return rows


def _parity_line(progress: dict[str, Any]) -> str | None:
    parity = progress.get("parity") or {}
    parts = []
    if "port" in parity:
        parts.append(f"structural port max abs {parity['port']:.2e}")
    if "refine" in parity:
        parts.append(f"refined port max abs {parity['refine']:.2e}")
    if "verify" in parity:
        v = parity["verify"]
        verdict = "passed" if v.get("passed") else "FAILED"
        parts.append(f"verify {verdict} (max abs {v.get('max_abs_diff', 0):.2e}, cosine {v.get('cosine', 0):.8f}, "
                     f"{v.get('dtype', '?')} on {v.get('device', '?')})")
    return "Parity so far: " + "; ".join(parts) + "." if parts else None


def render(job: Job, now: float | None = None) -> str:
    """The comment's text for the job's current state (without the marker)."""
    now = time.time() if now is None else now
    head = [f"### integrate `{job.source}` (revision `{job.revision}`)",
            f"Requested by @{job.requester} · job `{job.id}`" + (f" · attempt {job.attempt}" if job.attempt else "")]
    body: list[str] = []
    if job.state in ("new", "queued"):
        again = " again (the worker running it stopped answering)" if job.attempt and job.state == "queued" else ""
        since = job.dispatched_at if again else job.requested_at
        body.append(f"**Waiting for a GPU worker**{again}, queued at {_clock(since)}.")
    elif job.state == "running":
        body.append(f"**Running** on a GPU worker since {_clock(job.started_at)} ({_seconds(now - (job.started_at or now))} so far).")
        if job.cancel_requested_by:
            body.append(f"Cancel asked by @{job.cancel_requested_by}; stopping.")
    elif job.state == "succeeded":
        pr = job.result.get("pr_url")
        took = _seconds((job.finished_at or now) - (job.started_at or now))
        body.append(f"**Done in {took}: draft PR {pr}**" if pr else f"**Done in {took}**: {job.result.get('summary', 'no PR was asked for')}.")
        body.append("Every claim in it can be re-measured by a maintainer with `integrate verify` (see its Reproduce section).")
    elif job.state == "failed":
        stage = job.result.get("stage")
        where = f"**Stopped at `{stage}`**" if stage else "**Stopped**"
        body.append(f"{where}: {job.result.get('error', 'no reason recorded')}")
        if job.result.get("hint"):
            body.append(f"What to do: {job.result['hint']}")
    elif job.state == "cancelled":
        by = job.cancel_requested_by or job.result.get("cancelled_by")
        body.append("**Cancelled**" + (f" by @{by}" if by else "") + f". Comment `/integrate {job.source}` to start it again.")
    table = _stage_table(job.progress)
    parity = _parity_line(job.progress)
    parts = ["\n".join(head), "\n\n".join(body)]
    if table:
        parts.append("\n".join(table))
    if parity:
        parts.append(parity)
    return redact_text("\n\n".join(parts))


def with_marker(job_id: str, body: str) -> str:
    """The body as GitHubClient.upsert_comment stores it (so an unchanged body is not re-sent)."""
    return f"{body.rstrip()}\n\n{marker_line(marker_kind(job_id))}\n"


def _retryable(exc: Exception) -> bool:
    if not isinstance(exc, IntegrateError):
        return False
    text = exc.message
    return any(s in text for s in ("rate limited", "cannot reach the API", "HTTP 5", "unavailable"))


class StatusComment:
    """Keeps one job's comment up to date, sending only when its text changed."""

    def __init__(self, client: GitHubClient, policy: RetryPolicy = COMMENT_RETRY, sleep=time.sleep) -> None:
        self.client = client
        self.policy = policy
        self.sleep = sleep
        self._sent: dict[str, tuple[str, CommentInfo]] = {}  # job id -> (last body sent, the comment)

    def show(self, job: Job, now: float | None = None, must: bool = False) -> CommentInfo | None:
        """Create or edit the job's comment (nothing is sent when its text is unchanged).
        Failures after the retries are logged and return None, unless `must` (the first
        comment and the final one), where they raise."""
        body = with_marker(job.id, render(job, now))
        sent = self._sent.get(job.id)
        if sent and sent[0] == body:
            return sent[1]

        def send() -> CommentInfo:
            if job.comment_id is None:
                return self.client.upsert_comment(job.repo, job.issue, marker_kind(job.id), body)
            return self.client.edit_comment(job.repo, job.issue, job.comment_id, body)

        try:
            info = call_with_retry(send, self.policy, _retryable, self.sleep)
        except (IntegrateError, GaveUp) as exc:
            cause = exc.__cause__ if isinstance(exc, GaveUp) and exc.__cause__ else exc
            message = getattr(cause, "message", str(cause))
            log.warning("status comment of job %s on %s#%s not updated: %s", job.id, job.repo, job.issue, message)
            if must:
                raise IntegrateError(f"status comment on {job.repo}#{job.issue}: {message}") from None
            return None
        self._sent[job.id] = (body, info)
        return info


def refusal_text(user: str, label: str = "integrate") -> str:
    """The one polite answer to a /integrate command from someone who may not start runs."""
    return (f"Thanks @{user}! Only this repository's owners, members and collaborators can start integrate runs, "
            f"so this request was not run. A maintainer can start it by commenting `/integrate <org/model>` "
            f"or by adding the `{label}` label.")


def reply(client: GitHubClient, repo: str, issue: int, kind: str, user: str, reason: str) -> CommentInfo:
    """The bot's one answer on an issue where it runs nothing (refused, or a command it cannot
    read): one comment per issue and kind, edited when it happens again."""
    text = refusal_text(user) if kind == "refused" else f"@{user}: {reason}"
    return call_with_retry(lambda: client.upsert_comment(repo, issue, f"integrate:bot-{kind}", redact_text(text)),
                           COMMENT_RETRY, _retryable)
