"""Load on the bot's webhook server: 1,000 deliveries, checked one by one.

    python benchmarks/bot_load.py [--deliveries 1000] [--concurrency 16] [--queue sqlite|redis] [--no-drain] [--json OUT]

The real `integrate bot serve` (uvicorn, 127.0.0.1) with the stand-in GitHub REST server as the
App's GitHub. The deliveries are mixed: issue labels (`integrate` and others), `/integrate`
commands from maintainers (some asking for the same job from another delivery), commands from
outsiders (refused), plain comments, pings; 20% are re-sent deliveries (same X-GitHub-Delivery)
and 10% are forged (a wrong secret, or unsigned), shuffled and sent from `--concurrency` clients.

Checked: every genuine delivery acknowledged (2xx), with its latency; every forged one refused
(401); exactly one job per distinct trigger (issue + source + revision), each with exactly one
status comment and one queue message; then (unless --no-drain) two `integrate bot worker`
processes run every job with a stand-in for the integrate command (tests/bot_support.py: writes
run.json stage by stage, opens no PR), and each job runs exactly once. Prints the figures;
exits 1 when a check fails or the p99 acknowledgement is 1 s or more.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import requests  # noqa: E402
from bot_support import (  # noqa: E402
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
from github_server import GitHubStandIn  # noqa: E402
from publish_helpers import small_repo  # noqa: E402

from agent.bot.jobs import JobStore, job_id_for  # noqa: E402
from agent.bot.queue import open_backend  # noqa: E402
from agent.bot.worker import job_task  # noqa: E402

REPOS = ("huggingface/diffusers", "huggingface/diffusers-staging", "acme/diffusers-fork", "acme/models")
ISSUES = 40  # per repository


def plan(total: int, rng: random.Random) -> tuple[list[dict], set[str]]:
    """The deliveries to send, shuffled, and the ids of the jobs they must create."""
    forged_n, dup_n = total // 10, total // 5
    genuine_n = total - forged_n - dup_n
    genuine, expected = [], set()
    kinds = ["command"] * 40 + ["same-job"] * 10 + ["label"] * 10 + ["outsider"] * 15 + ["plain"] * 10 + ["other-label"] * 10 + ["ping"] * 5
    for n in range(genuine_n):
        kind = kinds[n % len(kinds)]
        repo, issue = rng.choice(REPOS), rng.randint(1, ISSUES)
        if kind == "command":
            source, revision = f"acme/model-{n}", rng.choice(["main", "main", "v1"])
            text = f"/integrate {source}" + (f" --revision {revision}" if revision != "main" else "")
            genuine.append({"kind": kind, "event": "issue_comment", "payload": comment_event(issue, text, repo=repo,
                            association=rng.choice(["OWNER", "MEMBER", "COLLABORATOR"]))})
            expected.add(job_id_for(repo, issue, source, revision))
        elif kind == "same-job" and genuine and any(g["kind"] == "command" for g in genuine):
            earlier = rng.choice([g for g in genuine if g["kind"] == "command"])
            payload = json.loads(json.dumps(earlier["payload"]))
            payload["comment"]["user"]["login"] = "another-maintainer"
            genuine.append({"kind": kind, "event": "issue_comment", "payload": payload})
        elif kind == "label":
            body = f"Weights at https://huggingface.co/acme/labelled-{n}"
            genuine.append({"kind": kind, "event": "issues", "payload": label_event(issue, repo=repo, issue_body=body)})
            expected.add(job_id_for(repo, issue, f"acme/labelled-{n}", "main"))
        elif kind == "outsider":
            genuine.append({"kind": kind, "event": "issue_comment", "payload": comment_event(
                issue, f"/integrate acme/sneaky-{n}", user=f"visitor{n}", association=rng.choice(["NONE", "CONTRIBUTOR"]), repo=repo)})
        elif kind == "plain":
            genuine.append({"kind": kind, "event": "issue_comment", "payload": comment_event(issue, "Looks great, thanks!", repo=repo)})
        elif kind == "other-label":
            genuine.append({"kind": kind, "event": "issues", "payload": label_event(issue, label="bug", repo=repo)})
        else:
            genuine.append({"kind": "ping", "event": "ping", "payload": {"zen": "Design for failure.", "hook_id": 1}})
    for g in genuine:
        g["delivery"] = str(uuid.uuid4())
        g["secret"] = "genuine"
    duplicates = [dict(rng.choice(genuine), kind="duplicate") for _ in range(dup_n)]
    forged = []
    for n in range(forged_n):
        repo, issue = rng.choice(REPOS), rng.randint(1, ISSUES)
        payload = comment_event(issue, f"/integrate acme/forged-{n}", association="OWNER", repo=repo)
        forged.append({"kind": "forged", "event": "issue_comment", "payload": payload, "delivery": str(uuid.uuid4()),
                       "secret": rng.choice(["wrong", "unsigned"])})
    sends = genuine + duplicates + forged
    rng.shuffle(sends)
    return sends, expected


def send_all(url: str, sends: list[dict], concurrency: int) -> list[dict]:
    local = threading.local()

    def one(item: dict) -> dict:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        secret = {"genuine": "default", "wrong": "not-the-secret", "unsigned": None}[item["secret"]]
        kwargs = {} if secret == "default" else {"secret": secret}
        headers, body = delivery(item["event"], item["payload"], delivery_id=item["delivery"], **kwargs)
        start = time.perf_counter()
        response = session.post(url + "/webhook", data=body, headers=headers, timeout=30)
        return {"kind": item["kind"], "status": response.status_code, "seconds": time.perf_counter() - start,
                "answer": response.json(), "delivery": item["delivery"]}

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, sends))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deliveries", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--queue", choices=["sqlite", "redis"], default="sqlite")
    ap.add_argument("--no-drain", action="store_true", help="Do not run the jobs afterwards.")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--json", type=Path, help="Write the figures here.")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    sends, expected = plan(args.deliveries, rng)
    checks: dict[str, bool] = {}
    figures: dict = {"deliveries": len(sends), "concurrency": args.concurrency, "queue": args.queue}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bot-load-")))
        gh = stack.enter_context(GitHubStandIn(tmp / "github"))
        key = setup_github(gh, small_repo(tmp / "upstream", lines=3), issues=ISSUES, repos=REPOS)
        if args.queue == "redis":
            if shutil.which("redis-server") is None:
                print("redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
                return 2
            queue = stack.enter_context(redis_server(tmp / "redis"))
        else:
            queue = f"sqlite://{tmp / 'bot' / 'queue.db'}"
        log = tmp / "runs.jsonl"
        env = bot_env(gh.url, key, queue, FAKE_LOG=str(log), FAKE_STAGE_S="0.01")
        huey, kv = open_backend(queue)
        job_task(huey)  # so huey can read the queued messages back
        store = JobStore(kv)
        url, server = stack.enter_context(serve(env, tmp))

        start = time.perf_counter()
        results = send_all(url, sends, args.concurrency)
        figures["send_seconds"] = round(time.perf_counter() - start, 2)
        genuine = [r for r in results if r["kind"] != "forged"]
        forged = [r for r in results if r["kind"] == "forged"]
        latencies = [r["seconds"] for r in genuine]
        figures["by_kind"] = {k: sum(r["kind"] == k for r in results) for k in sorted({r["kind"] for r in results})}
        figures["ack_seconds"] = {"p50": round(statistics.median(latencies), 4), "p95": round(percentile(latencies, 0.95), 4),
                                  "p99": round(percentile(latencies, 0.99), 4), "max": round(max(latencies), 4)}
        figures["forged_refused"] = f"{sum(r['status'] == 401 for r in forged)}/{len(forged)}"
        checks["every genuine delivery acknowledged (2xx)"] = all(200 <= r["status"] < 300 for r in genuine)
        checks["every forged delivery refused (401)"] = all(r["status"] == 401 for r in forged)
        checks["p99 acknowledgement under 1 s"] = figures["ack_seconds"]["p99"] < 1.0
        answers: dict[str, list[dict]] = {}
        for r in genuine:
            answers.setdefault(r["delivery"], []).append(r["answer"])
        checks["each delivery id acted on once, its re-sends answered as duplicates"] = all(
            sum(not a.get("duplicate") for a in group) == 1 for group in answers.values())

        # the announcer posts each job's comment, then queues it
        try:
            wait_for(lambda: not store.to_announce() and not store.replies(), 300, "the announcer to catch up", every=0.5)
        except AssertionError as exc:
            print(f"note: {exc}", file=sys.stderr)
        jobs = store.all()
        figures["jobs"] = len(jobs)
        figures["distinct_triggers"] = len(expected)
        checks["exactly one job per distinct trigger"] = {j.id for j in jobs} == expected and len(jobs) == len(expected)
        comments = job_comments(gh)
        checks["one status comment per job"] = sorted(c["id"] for c in comments) == sorted(j.comment_id for j in jobs)
        pending = [(t.args[0], t.args[1]) for t in huey.pending()]
        checks["one queue message per job (none lost)"] = sorted(pending) == sorted((j.id, j.dispatch) for j in jobs)
        refused_issues = {(r["payload"]["repository"]["full_name"], r["payload"]["issue"]["number"])
                          for r in sends if r["kind"] == "outsider"}
        refusals = [c for c in gh.issue_comments if "integrate:bot-refused" in c["body"]]
        checks["one refusal per issue with outsiders' commands"] = sorted((c["repo"], c["issue"]) for c in refusals) == sorted(refused_issues)
        checks["no job from a forged delivery"] = not any(j.source.startswith("acme/forged-") for j in jobs)

        if not args.no_drain:
            fake = write_fake_integrate(tmp)
            start = time.perf_counter()
            workers = [worker(env, tmp, f"worker-{n}", "--workdir", str(tmp / f"work-{n}"), "--device", "cpu", "--threads", "2",
                              "--integrate-command", fake, "--heartbeat", "1", "--lease", "10", "--reap-every", "2")
                       for n in range(2)]
            stack.callback(lambda: [w.kill() for w in workers])
            try:
                wait_for(lambda: all(j.state == "succeeded" for j in store.all()), 1800, "every job to run", every=1)
            except AssertionError as exc:
                print(f"note: {exc}", file=sys.stderr)
            figures["drain_seconds"] = round(time.perf_counter() - start, 1)
            runs = [r["run"] for r in fake_runs(log)]
            checks["every job ran exactly once"] = sorted(runs) == sorted(f"bot-{j.id}" for j in jobs)
            finals = job_comments(gh)
            checks["every comment ends with the PR link"] = len(finals) == len(jobs) and all("draft PR" in c["body"] for c in finals)
        figures["github_requests"] = len(gh.requests)

    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "checks": checks}, indent=2) + "\n")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
