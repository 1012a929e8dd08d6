"""`--dry-run`: print every call publishing would make, and make none.

For GitHub the real client code runs, unchanged, over PyGithub's own connection seam
(`Requester.injectConnectionClasses`): each request PyGithub builds is printed (method, path,
the body's keys) and answered locally as if nothing existed yet (no fork, no pull request), so
the printout is the longest path a first publish takes. No token is read and nothing leaves the
machine. For the Hub, and for git, the clients print the calls they would make (HubClient's
`plan` hook, PushPlan).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

DRY_NUMBER = 0  # the number a dry-run pull request answers with, printed as {number}
YOU = "{you}"  # the authenticated user, unknown without a token


class DryRun:
    """Collects and prints the calls a publish would make."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.calls: list[str] = []

    def record(self, method: str, path: str, what: str = "") -> None:
        line = f"{method} {path}" + (f"  {what}" if what else "")
        self.calls.append(line)
        print(f"dry run: {line}", file=self.out, flush=True)

    @contextmanager
    def github(self, upstream: str) -> Iterator[None]:
        """While open, every PyGithub request is printed and answered by `_Answers`."""
        from github.Requester import Requester

        answers = _Answers(self, upstream)

        class Connection:
            def __init__(self, host: str, port: int | None = None, **kwargs: Any) -> None:
                self.host, self.port = host, port

            def request(self, verb: str, url: str, input: Any, headers: dict, stream: bool = False) -> None:
                self.verb, self.url, self.input = verb, url, input

            def getresponse(self) -> _Response:
                return answers.answer(self.verb, self.url, self.input)

            def close(self) -> None:
                pass

        Requester.injectConnectionClasses(Connection, Connection)
        try:
            yield
        finally:
            Requester.resetConnectionClasses()


def body_keys(raw: Any) -> str:
    """What a request body holds, without its values: {a, b} for an object, [n items] for a list."""
    if raw is None or raw == "":
        return ""
    try:
        data = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except (TypeError, ValueError):
        return "(body)"
    if isinstance(data, dict):
        return "{" + ", ".join(sorted(data)) + "}"
    if isinstance(data, list):
        return f"[{len(data)} item{'s' if len(data) != 1 else ''}]"
    return "(body)"


class _Response:
    def __init__(self, status: int, payload: Any) -> None:
        self.status = status
        self.headers = {"content-type": "application/json"}
        self._text = json.dumps(payload)

    def getheaders(self):
        return self.headers.items()

    def read(self) -> str:
        return self._text


class _Answers:
    """Local answers for a first publish: the upstream exists, the fork and the PR do not yet."""

    def __init__(self, dry: DryRun, upstream: str) -> None:
        self.dry = dry
        self.upstream = upstream
        self.existing = {upstream}
        self.api = "https://api.github.com"

    def _repo(self, full_name: str) -> dict[str, Any]:
        owner, name = full_name.split("/", 1)
        data = {"full_name": full_name, "name": name, "owner": {"login": owner}, "default_branch": "{default_branch}",
                "clone_url": f"https://github.com/{full_name}.git", "html_url": f"https://github.com/{full_name}",
                "url": f"{self.api}/repos/{full_name}", "fork": full_name != self.upstream}
        if full_name != self.upstream:
            data["parent"] = self._repo(self.upstream)
        return data

    def _pull(self, head: str) -> dict[str, Any]:
        owner, _, ref = head.rpartition(":")
        fork = f"{owner or self.upstream.split('/')[0]}/{self.upstream.split('/')[1]}"
        base = f"{self.api}/repos/{self.upstream}"
        return {"number": DRY_NUMBER, "html_url": f"https://github.com/{self.upstream}/pull/{{number}}", "state": "open",
                "draft": True, "title": "", "body": "", "labels": [], "url": f"{base}/pulls/{DRY_NUMBER}",
                "issue_url": f"{base}/issues/{DRY_NUMBER}",
                "head": {"ref": ref, "sha": "{head_sha}", "repo": self._repo(fork)},
                "base": {"ref": "{default_branch}", "repo": self._repo(self.upstream)}}

    def answer(self, verb: str, url: str, raw: Any) -> _Response:
        parts = urlsplit(url)
        path = re.sub(r"/(pulls|issues)/0(?=/|$)", r"/\1/{number}", parts.path)
        query = f"?{unquote(parts.query)}" if parts.query else ""
        self.dry.record(verb, path + query, body_keys(raw))
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)", parts.path)
        if verb == "GET" and parts.path == "/user":
            return _Response(200, {"login": YOU})
        if verb == "GET" and m:
            return _Response(200, self._repo(m[1])) if m[1] in self.existing else _Response(404, {"message": "Not Found"})
        if verb == "POST" and parts.path.endswith("/forks"):
            body = json.loads(raw or "{}")
            fork = f"{body.get('organization') or YOU}/{body.get('name') or self.upstream.split('/')[1]}"
            self.existing.add(fork)
            return _Response(202, self._repo(fork))
        if verb == "GET" and parts.path.endswith("/pulls"):
            return _Response(200, [])
        if parts.path.endswith("/pulls") or re.search(r"/pulls/\d+$", parts.path):
            head = (json.loads(raw) if raw else {}).get("head") or parse_qs(parts.query).get("head", [""])[0]
            return _Response(201 if verb == "POST" else 200, self._pull(head or f"{YOU}:branch"))
        return _Response(200, [] if verb == "POST" and parts.path.endswith("/labels") else {})
