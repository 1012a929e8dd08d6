"""One job on a worker: its folder, the checkout, the `integrate` command, progress, outcome.

The job runs as a child process of the worker: the same command line a person runs
(`integrate <hf-repo> --target CHECKOUT --publish github --json`, the same orchestrator), in its
own session so a cancel stops it and everything it started, and with PR_SET_PDEATHSIG so it dies
with a worker that is SIGKILLed (no orphan keeps writing while another worker re-runs the job).
The job's folder (`<workdir>/<job id>/`) holds a clone of the issue's repository and the run
folder; a job run again on the same machine continues with `integrate resume` (finished stages
kept), elsewhere it starts over. Either way the publish step finds the branch's pull request
and updates it, so a re-run never opens a second one.

Progress comes from the run's own record (run.json): stage, status and time, parity so far.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.bot.jobs import Job
from agent.errors import IntegrateError
from agent.publish.push import display_url, git_environment
from agent.redact import redact_text

PR_SET_PDEATHSIG = 1
ERROR_PREFIX = "error: "


@dataclass(frozen=True)
class ExecutionSettings:
    workdir: Path
    integrate: tuple[str, ...] = (sys.executable, "-m", "agent.cli")  # the command; a stand-in in the load test
    device: str = "cuda"
    fork: str | None = None  # default: a branch of the repository itself
    labels: tuple[str, ...] = ()
    global_flags: tuple[str, ...] = ()  # e.g. --allow-reduced-isolation
    env: Mapping[str, str] = field(default_factory=dict)  # added to the child's environment


def run_id_for(job: Job) -> str:
    return f"bot-{job.id}"


def job_folder(settings: ExecutionSettings, job: Job) -> Path:
    return settings.workdir / job.id


def run_folder(settings: ExecutionSettings, job: Job) -> Path:
    return job_folder(settings, job) / "runs" / run_id_for(job)


def clone(url: str, dest: Path, token: str | None) -> None:
    """A clone of the issue's repository, the token only in git's environment."""
    env = {**os.environ, **git_environment(url, token), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    proc = subprocess.run(["git", "clone", "--quiet", "--no-tags", url, str(dest)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise IntegrateError(redact_text(f"git clone {display_url(url)} failed: {last}"))
    for key, value in (("user.name", "integrate-bot"), ("user.email", "integrate-bot@users.noreply.github.com")):
        subprocess.run(["git", "-C", str(dest), "config", key, value], check=True, capture_output=True)


def command(settings: ExecutionSettings, job: Job, checkout: Path, resume: bool) -> list[str]:
    run_dir = run_folder(settings, job)
    if resume:
        return [*settings.integrate, *settings.global_flags, "resume", str(run_dir), "--json"]
    argv = [*settings.integrate, *settings.global_flags, job.source, "--target", str(checkout), "--publish", "github",
            "--upstream", job.repo, "--fork", settings.fork or job.repo, "--runs-dir", str(run_dir.parent),
            "--run-id", run_dir.name, "--device", settings.device, "--json"]
    if job.revision != "main":
        argv += ["--revision", job.revision]
    for label in settings.labels:
        argv += ["--label", label]
    return argv + list(job.options)  # checked by triggers.parse_command; the last --device wins


def prepare(settings: ExecutionSettings, job: Job, clone_url: str, token: str | None) -> list[str]:
    """The job's folder made ready; returns the command that runs (or resumes) it."""
    folder = job_folder(settings, job)
    checkout = folder / "checkout"
    if (run_folder(settings, job) / "run.json").is_file() and checkout.is_dir():
        return command(settings, job, checkout, resume=True)
    if folder.exists():
        shutil.rmtree(folder)  # an attempt that died before its run began: start clean
    folder.mkdir(parents=True)
    clone(clone_url, checkout, token)
    return command(settings, job, checkout, resume=False)


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the lease still re-queues the job; the orphan is ended by its own limits


def start(argv: list[str], folder: Path, env: Mapping[str, str]) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    out = (folder / "stdout.json").open("wb")
    err = (folder / "stderr.log").open("ab")
    try:
        return subprocess.Popen(argv, cwd=folder, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True, preexec_fn=_die_with_parent)
    finally:
        out.close()
        err.close()


def stop(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM to the job's whole process group, SIGKILL after `grace_s`."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 30.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def progress(run_dir: Path) -> dict[str, Any]:
    """Stages and parity so far, from run.json (empty before the run has begun)."""
    try:
        data = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    stages = {name: {"status": entry.get("status"), "seconds": entry.get("seconds")}
              for name, entry in (data.get("stages") or {}).items()}
    parity: dict[str, Any] = {}
    for name in ("port", "refine"):
        result = (data["stages"].get(name) or {}).get("result") or {}
        p = result.get("parity") or {}
        if isinstance(p.get("max_abs_diff"), (int, float)):
            parity[name] = p["max_abs_diff"]
    verify = ((data["stages"].get("verify") or {}).get("result") or {}).get("parity") or {}
    if "passed" in verify:
        parity["verify"] = {k: verify.get(k) for k in ("passed", "max_abs_diff", "cosine", "dtype", "device")}
    return {"stages": stages, "parity": parity, "stage_reached": data.get("stage_reached")}


def _last_error(stderr: str) -> str | None:
    errors = [line[len(ERROR_PREFIX):] for line in stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    internal = [line for line in stderr.splitlines() if line.startswith("internal error: ")]
    return (errors or internal or [None])[-1]


def hint(job: Job, stage: str | None, returncode: int) -> str:
    again = f"comment `/integrate {job.source}" + (f" --revision {job.revision}" if job.revision != "main" else "") + "`"
    if returncode == 1:
        return ("the port ran but does not compute what the reference computes, which needs a person: run "
                f"`integrate {job.source} --out DIR` and read DIR's reports/parity.json (the per-layer trace).")
    if returncode == 3:
        return f"this is a bug in integrate: report it with job id `{job.id}` and the worker's log."
    if stage == "resolve":
        return (f"check that `{job.source}` at `{job.revision}` exists and the worker can read it (a private repo needs "
                f"HF_TOKEN on the worker), then {again}.")
    if stage == "publish":
        return ("GitHub refused a step (the App needs contents, pull requests and issues write access on this "
                f"repository); once fixed, {again}: the finished stages are kept.")
    return f"the reason says what the run needed; once it is there, {again} (finished stages are kept)."


def outcome(job: Job, returncode: int, stdout: str, stderr: str) -> tuple[str, dict[str, Any]]:
    """("succeeded", {pr_url, parity}) or ("failed", {error, stage, hint}) from the child's exit."""
    try:
        summary = json.loads(stdout) if stdout.strip() else {}
    except ValueError:
        summary = {}
    if returncode == 0:
        github = ((summary.get("publish") or {}).get("remote") or {}).get("github") or {}
        result = {"pr_url": github.get("pr_url"), "pr_created": github.get("created")}
        if summary.get("parity"):
            result["parity"] = {k: summary["parity"].get(k) for k in ("max_abs_diff", "cosine", "dtype", "device")}
        if not github.get("pr_url"):
            result["summary"] = "the run passed but reported no pull request"
        return "succeeded", result
    stage = summary.get("stage_reached")
    error = _last_error(stderr) or summary.get("error")
    if returncode < 0:
        error = f"the integrate process was ended by signal {-returncode}"
    error = redact_text(error or f"integrate exited with status {returncode}")
    return "failed", {"error": error.splitlines()[0][:500], "stage": stage, "exit": returncode,
                      "hint": hint(job, stage, returncode)}


def supervise(proc: subprocess.Popen, every_s: float, tick) -> int | None:
    """Wait for the child, calling tick() every `every_s`; when tick returns True the child
    is stopped and None returned, else the child's exit status."""
    while True:
        try:
            return proc.wait(every_s)
        except subprocess.TimeoutExpired:
            pass
        if tick():
            stop(proc)
            return None


def read_output(folder: Path) -> tuple[str, str]:
    """(stdout, last 64 KiB of stderr) the child left in the job's folder."""
    out = (folder / "stdout.json").read_text(errors="replace") if (folder / "stdout.json").is_file() else ""
    err_path = folder / "stderr.log"
    err = ""
    if err_path.is_file():
        with err_path.open("rb") as fh:
            fh.seek(max(0, err_path.stat().st_size - 65536))
            err = fh.read().decode(errors="replace")
    return out, err
