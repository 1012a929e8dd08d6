"""Shared parts of the bot tests and the load benchmark: signed webhook deliveries, the real
`integrate bot serve` / `integrate bot worker` processes, a GitHub stand-in set up with an App
and its installation, a real redis-server, and a stand-in for the `integrate` command (for the
tests that exercise the queue and the comments, not the port: it writes a run.json stage by
stage, like the real command, and prints a summary; it opens no pull request)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_SECRET = "whsec-test-" + "Qm4" * 8
APP_ID = 4242
INSTALLATION_ID = 777
REPO = "huggingface/diffusers"

FAKE_INTEGRATE = r'''
import json, os, sys, time
from pathlib import Path

args = sys.argv[1:]
if args[:1] == ["resume"]:
    run_dir = Path(args[1])
else:
    run_dir = Path(args[args.index("--runs-dir") + 1]) / args[args.index("--run-id") + 1]
run_dir.mkdir(parents=True, exist_ok=True)
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"run": run_dir.name, "argv": args, "pid": os.getpid(),
                          "secret_seen": "GITHUB_WEBHOOK_SECRET" in os.environ,
                          "app_id": os.environ.get("GITHUB_APP_ID")}) + "\n")
stages = {}
pause = float(os.environ.get("FAKE_STAGE_S", "0.05"))
for name in ("resolve", "analyze", "plan", "scaffold", "port", "refine", "convert", "verify", "publish"):
    stages[name] = {"status": "running"}
    (run_dir / "run.json").write_text(json.dumps({"stages": stages, "stage_reached": name}))
    time.sleep(pause)
    if os.environ.get("FAKE_FAIL_AT") == name:
        stages[name] = {"status": "failed", "seconds": pause, "error": "the reference needs flash_attn (not installed)"}
        (run_dir / "run.json").write_text(json.dumps({"stages": stages, "stage_reached": name}))
        print(json.dumps({"status": "failed", "stage_reached": name, "error": "the reference needs flash_attn"}))
        print("error: analyze: the reference imports flash_attn, which is not installed", file=sys.stderr)
        sys.exit(2)
    result = {"parity": {"max_abs_diff": 0.0, "passed": True, "cosine": 1.0, "dtype": "float32", "device": "cpu"}} if name in ("port", "verify") else {}
    stages[name] = {"status": "done", "seconds": pause, "result": result}
    (run_dir / "run.json").write_text(json.dumps({"stages": stages, "stage_reached": name}))
print(json.dumps({"status": "passed", "stage_reached": "publish",
                  "parity": {"max_abs_diff": 0.0, "cosine": 1.0, "dtype": "float32", "device": "cpu", "passed": True},
                  "publish": {"remote": {"github": {"pr_url": "https://stand-in.invalid/pull/" + run_dir.name, "created": True}}}}))
'''


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery(event: str, payload: dict, secret: str | None = WEBHOOK_SECRET, delivery_id: str | None = None) -> tuple[dict, bytes]:
    """(headers, body) of one webhook delivery; secret None: unsigned."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event,
               "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()), "User-Agent": "GitHub-Hookshot/test"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(body, secret)
    return headers, body


def _base(repo: str, issue: int, sender: str, title: str, body: str) -> dict:
    return {"repository": {"full_name": repo, "name": repo.split("/")[1], "owner": {"login": repo.split("/")[0]}},
            "issue": {"number": issue, "title": title, "body": body, "user": {"login": "author"}},
            "sender": {"login": sender, "type": "User"}, "installation": {"id": INSTALLATION_ID}}


def comment_event(issue: int, text: str, user: str = "maintainer", association: str = "MEMBER", repo: str = REPO,
                  title: str = "Please add acme/tiny-dit", issue_body: str = "") -> dict:
    payload = _base(repo, issue, user, title, issue_body)
    payload.update(action="created", comment={"id": abs(hash((issue, text, user))) % 10**9, "body": text,
                                              "user": {"login": user}, "author_association": association})
    return payload


def label_event(issue: int, label: str = "integrate", user: str = "maintainer", repo: str = REPO,
                title: str = "New model", issue_body: str = "Weights: https://huggingface.co/acme/tiny-dit") -> dict:
    payload = _base(repo, issue, user, title, issue_body)
    payload.update(action="labeled", label={"name": label})
    return payload


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_github(gh, repo_source: Path | None = None, issues: int = 3, repos: tuple[str, ...] = (REPO,)) -> str:
    """The stand-in with the App installed on `repos`, each with `issues` issues (numbered from
    1); returns the App's private key."""
    from publish_helpers import rsa_key_pair

    private, public = rsa_key_pair()
    gh.add_app(APP_ID, public)
    for repo in repos:
        gh.add_repo(repo, source=repo_source)
        for n in range(issues):
            gh.add_issue(repo, f"model request {n + 1}", "Weights: https://huggingface.co/acme/tiny-dit")
    gh.add_installation(INSTALLATION_ID, APP_ID, "huggingface", tuple(repos))
    return private


def bot_env(gh_url: str, private_key: str, queue: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "HF_", "ANTHROPIC_"))}
    env.update(GITHUB_API_URL=gh_url, GITHUB_APP_ID=str(APP_ID), GITHUB_APP_PRIVATE_KEY=private_key,
               GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET, INTEGRATE_BOT_QUEUE=queue, HF_HUB_OFFLINE="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(extra)
    return env


def write_fake_integrate(folder: Path) -> str:
    path = folder / "fake_integrate.py"
    path.write_text(FAKE_INTEGRATE)
    return f"{sys.executable} {path}"


def fake_runs(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


class Proc:
    """A bot process (serve or worker) with its output in files."""

    def __init__(self, args: list[str], env: dict, cwd: Path, name: str) -> None:
        self.out = cwd / f"{name}.log"
        self.handle = self.out.open("wb")
        self.p = subprocess.Popen([sys.executable, "-m", "agent.cli", *args], cwd=cwd, env=env, stdout=self.handle,
                                  stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.out.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait(15)
        self.handle.close()


@contextmanager
def serve(env: dict, cwd: Path, extra: tuple[str, ...] = ()):
    """`integrate bot serve` (uvicorn) on a free port of 127.0.0.1; yields (url, Proc)."""
    import requests

    port = free_port()
    proc = Proc(["bot", "serve", "--port", str(port), "--github-pace", "0,0", *extra], env, cwd, f"serve-{port}")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bot serve did not start:\n{proc.log()}")
            time.sleep(0.1)
        yield url, proc
    finally:
        proc.kill(signal.SIGINT)


def worker(env: dict, cwd: Path, name: str, *extra: str) -> Proc:
    return Proc(["bot", "worker", "--github-pace", "0,0", *extra], env, cwd, name)


def wait_for(condition, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@contextmanager
def redis_server(folder: Path):
    """A real redis-server on a free port (no persistence); yields its URL. Raises
    FileNotFoundError when redis-server is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        wait_for(lambda: _pings(client), 20, "redis-server to answer")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def job_comments(gh, issue: int | None = None) -> list[dict]:
    """The stand-in's issue comments that carry a bot job marker."""
    return [c for c in gh.issue_comments if "integrate:bot-job-" in c["body"] and (issue is None or c["issue"] == issue)]
