"""A stand-in for GitHub's REST API on 127.0.0.1, for the real PyGithub client.

It keeps real state (users, repositories backed by bare git repositories, forks, pull requests,
labels, reviews, review and issue comments, GitHub App installations and their tokens) and
answers the endpoints the publish client, `integrate verify --post` and the bot use, with the
fields GitHub's published REST API description marks as required (tests/test_publish_schema.py
checks every recorded response against that description when its trimmed copy is present).

Pushes are real git pushes: a repository's `clone_url` is a file:// URL of its bare repository,
or, with `clone_scheme="http"`, this server's own smart-HTTP endpoint (git's http-backend), which
demands the pushing token as HTTP Basic credentials, as github.com does. Pull request diffs,
files and the lines a review comment may sit on come from `git diff` in those repositories.

Faults are scripted with `fail()`: the next N matching requests get a given status, headers and
body (rate limits, auth failures) before the real handler runs again.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

SECONDARY_LIMIT = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
    "status": "403",
}
PRIMARY_LIMIT = {
    "message": "API rate limit exceeded for user ID 1.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
    "status": "403",
}
BAD_CREDENTIALS = {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}
NOT_ACCESSIBLE = {
    "message": "Resource not accessible by personal access token",
    "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
    "status": "403",
}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git(*args: str, cwd: Path | None = None, input: bytes | None = None) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, input=input, check=True)
    return proc.stdout.decode("utf-8", "replace")


@dataclass
class Fault:
    method: str
    path: re.Pattern
    status: int
    body: dict
    headers: dict
    times: int


@dataclass
class Repo:
    owner: str
    name: str
    bare: Path
    id: int
    default_branch: str = "main"
    parent: str | None = None  # full name of the repository this one is a fork of
    collaborators: set[str] = field(default_factory=set)
    ready_after: int = 0  # a new fork answers 404 to this many GETs first, as GitHub's forks take a while
    labels: dict[str, dict] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Installation:
    id: int
    app_id: int
    account: str
    repos: set[str]
    permissions: dict[str, str]


class GitHubStandIn:
    def __init__(self, root: Path, clone_scheme: str = "file") -> None:
        self.root = Path(root)
        self.clone_scheme = clone_scheme
        self.users: dict[str, str] = {}  # token -> login
        self.user_ids: dict[str, int] = {}
        self.repos: dict[str, Repo] = {}
        self.pulls: dict[str, list[dict]] = {}  # repo full name -> pull requests (internal records)
        self.issues: dict[str, list[dict]] = {}  # repo full name -> plain issues
        self.reviews: list[dict] = []
        self.review_comments: list[dict] = []
        self.issue_comments: list[dict] = []
        self.app_keys: dict[int, bytes] = {}  # app id -> public key PEM
        self.app_slugs: dict[int, str] = {}
        self.installations: dict[int, Installation] = {}
        self.installation_tokens: dict[str, tuple[int, float]] = {}  # token -> (installation id, expires at)
        self.token_ttl_s = 3600.0
        self.fork_delay = 0  # a new fork answers 404 to this many GETs, as GitHub's take a while to appear
        self.fork_hooks: dict[str, str] = {}  # hooks installed in every fork created through the API
        self.requests: list[dict] = []  # method, path, query, body, auth, status, response
        self.faults: list[Fault] = []
        self.git_auth: list[str | None] = []  # Authorization headers the smart-HTTP endpoint saw
        self._ids = itertools.count(1000)
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # set-up ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_user(self, login: str, token: str | None = None) -> None:
        self.user_ids.setdefault(login, next(self._ids))
        if token:
            self.users[token] = login

    def add_repo(self, full_name: str, source: Path | None = None, default_branch: str = "main",
                 collaborators: tuple[str, ...] = ()) -> Repo:
        """A repository whose git data is a bare clone of `source` (a git checkout), or empty."""
        owner, name = full_name.split("/")
        self.add_user(owner)
        bare = self.root / owner / f"{name}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        if source is not None:
            _git("clone", "-q", "--bare", str(source), str(bare))
        else:
            _git("init", "-q", "--bare", f"--initial-branch={default_branch}", str(bare))
        _git("config", "http.receivepack", "true", cwd=bare)
        repo = Repo(owner, name, bare, next(self._ids), default_branch, collaborators={owner, *collaborators})
        self.repos[full_name] = repo
        return repo

    def add_app(self, app_id: int, public_key_pem: bytes, slug: str = "integrate-bot") -> None:
        self.app_keys[app_id] = public_key_pem
        self.app_slugs[app_id] = slug
        self.add_user(f"{slug}[bot]")

    def add_installation(self, installation_id: int, app_id: int, account: str, repos: tuple[str, ...],
                         permissions: dict[str, str] | None = None) -> None:
        self.installations[installation_id] = Installation(
            installation_id, app_id, account, set(repos),
            permissions or {"contents": "write", "pull_requests": "write", "issues": "write", "metadata": "read"})

    def add_issue(self, full_name: str, title: str, body: str = "", author: str = "someone") -> int:
        self.add_user(author)
        number = self._next_number(full_name)
        self.issues.setdefault(full_name, []).append(
            {"number": number, "title": title, "body": body, "user": author, "created_at": _now(), "labels": []})
        return number

    def set_hook(self, full_name: str, hook: str, script: str | None) -> None:
        """Install (or with None remove) a hook in a repository's bare git dir, e.g. pre-receive."""
        path = self.repos[full_name].bare / "hooks" / hook
        if script is None:
            path.unlink(missing_ok=True)
            return
        path.write_text(script)
        path.chmod(0o755)

    def fail(self, method: str, path: str, status: int, body: dict | None = None, headers: dict | None = None,
             times: int = 1) -> None:
        """The next `times` requests matching METHOD and the path regex get this answer instead."""
        self.faults.append(Fault(method, re.compile(path), status, body or {}, headers or {}, times))

    def calls(self, method: str | None = None, path: str | None = None) -> list[dict]:
        """Recorded API requests (not git traffic), optionally filtered by method and path regex."""
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r["method"] == method) and (path is None or re.fullmatch(path, r["path"]))]

    def branch_head(self, full_name: str, branch: str) -> str | None:
        try:
            return _git("rev-parse", "--verify", "-q", f"refs/heads/{branch}", cwd=self.repos[full_name].bare).strip()
        except subprocess.CalledProcessError:
            return None

    def pull_records(self, full_name: str) -> list[dict]:
        return self.pulls.get(full_name, [])

    def __enter__(self) -> GitHubStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # representations (fields required by the REST API description) ---------------------------
    def _user(self, login: str) -> dict[str, Any]:
        base = f"{self.url}/users/{login}"
        uid = self.user_ids.setdefault(login, next(self._ids))
        return {
            "login": login, "id": uid, "node_id": f"U_{uid}", "avatar_url": f"{self.url}/avatars/{uid}",
            "gravatar_id": "", "url": base, "html_url": f"{self.url}/{login}", "followers_url": f"{base}/followers",
            "following_url": f"{base}/following{{/other_user}}", "gists_url": f"{base}/gists{{/gist_id}}",
            "starred_url": f"{base}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{base}/subscriptions",
            "organizations_url": f"{base}/orgs", "repos_url": f"{base}/repos", "events_url": f"{base}/events{{/privacy}}",
            "received_events_url": f"{base}/received_events", "type": "Bot" if login.endswith("[bot]") else "User",
            "site_admin": False, "user_view_type": "public",
        }

    def _private_user(self, login: str) -> dict[str, Any]:
        user = self._user(login)
        user.update(user_view_type="private", name=login, company=None, blog="", location=None, email=None,
                    hireable=None, bio=None, public_repos=1, public_gists=0, followers=0, following=0,
                    created_at="2020-01-01T00:00:00Z", updated_at=_now(), private_gists=0, total_private_repos=0,
                    owned_private_repos=0, disk_usage=0, collaborators=0, two_factor_authentication=True)
        return user

    def _clone_url(self, repo: Repo) -> str:
        if self.clone_scheme == "http":
            return f"{self.url}/git/{repo.full_name}.git"
        return repo.bare.resolve().as_uri()

    def _repo(self, repo: Repo, full: bool = True) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        templated = {
            "archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}", "blobs_url": "/git/blobs{/sha}",
            "branches_url": "/branches{/branch}", "collaborators_url": "/collaborators{/collaborator}",
            "comments_url": "/comments{/number}", "commits_url": "/commits{/sha}", "compare_url": "/compare/{base}...{head}",
            "contents_url": "/contents/{+path}", "git_commits_url": "/git/commits{/sha}", "git_refs_url": "/git/refs{/sha}",
            "git_tags_url": "/git/tags{/sha}", "issue_comment_url": "/issues/comments{/number}",
            "issue_events_url": "/issues/events{/number}", "issues_url": "/issues{/number}", "keys_url": "/keys{/key_id}",
            "labels_url": "/labels{/name}", "milestones_url": "/milestones{/number}",
            "notifications_url": "/notifications{?since,all,participating}", "pulls_url": "/pulls{/number}",
            "releases_url": "/releases{/id}", "statuses_url": "/statuses/{sha}", "trees_url": "/git/trees{/sha}",
        }
        plain = ["contributors", "deployments", "downloads", "events", "forks", "languages", "merges", "stargazers",
                 "subscribers", "subscription", "tags", "teams", "hooks"]
        data: dict[str, Any] = {
            "id": repo.id, "node_id": f"R_{repo.id}", "name": repo.name, "full_name": repo.full_name,
            "owner": self._user(repo.owner), "private": False, "html_url": f"{self.url}/{repo.full_name}",
            "description": None, "fork": repo.parent is not None, "url": api,
            **{k: api + v for k, v in templated.items()}, **{f"{k}_url": f"{api}/{k}" for k in plain},
            "git_url": f"git://127.0.0.1/{repo.full_name}.git", "ssh_url": f"git@127.0.0.1:{repo.full_name}.git",
            "clone_url": self._clone_url(repo), "mirror_url": None, "svn_url": f"{self.url}/{repo.full_name}",
            "homepage": None, "language": "Python", "forks_count": 0, "stargazers_count": 0, "watchers_count": 0,
            "size": 1, "default_branch": repo.default_branch, "open_issues_count": 0, "has_issues": True,
            "has_projects": False, "has_wiki": False, "has_pages": False, "has_discussions": False,
            "has_downloads": True, "archived": False, "disabled": False, "pushed_at": _now(),
            "created_at": "2022-01-01T00:00:00Z", "updated_at": _now(),
            "license": None, "forks": 0, "open_issues": 0, "watchers": 0, "allow_forking": True,
        }
        if full:
            data.update(subscribers_count=0, network_count=0)
            if repo.parent:
                data["parent"] = self._repo(self.repos[repo.parent], full=False)
                data["source"] = data["parent"]
        return data

    def _label(self, repo: Repo, name: str) -> dict[str, Any]:
        if name not in repo.labels:
            lid = next(self._ids)
            repo.labels[name] = {"id": lid, "node_id": f"LA_{lid}", "url": f"{self.url}/repos/{repo.full_name}/labels/{name}",
                                 "name": name, "description": None, "color": "ededed", "default": False}
        return repo.labels[name]

    def _ref(self, repo: Repo, branch: str, sha: str) -> dict[str, Any]:
        return {"label": f"{repo.owner}:{branch}", "ref": branch, "sha": sha, "user": self._user(repo.owner),
                "repo": self._repo(repo, full=False)}

    def _pull(self, pr: dict, simple: bool = False) -> dict[str, Any]:
        base_repo = self.repos[pr["base_repo"]]
        head_repo = self.repos[pr["head_repo"]]
        api = f"{self.url}/repos/{base_repo.full_name}"
        n = pr["number"]
        html = f"{self.url}/{base_repo.full_name}/pull/{n}"
        head_sha = self.branch_head(head_repo.full_name, pr["head_ref"]) or pr["head_sha"]
        links = {"self": f"{api}/pulls/{n}", "html": html, "issue": f"{api}/issues/{n}", "comments": f"{api}/issues/{n}/comments",
                 "review_comments": f"{api}/pulls/{n}/comments", "review_comment": f"{api}/pulls/comments{{/number}}",
                 "commits": f"{api}/pulls/{n}/commits", "statuses": f"{api}/statuses/{head_sha}"}
        data: dict[str, Any] = {
            "url": f"{api}/pulls/{n}", "id": pr["id"], "node_id": f"PR_{pr['id']}", "html_url": html,
            "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "issue_url": f"{api}/issues/{n}",
            "commits_url": f"{api}/pulls/{n}/commits", "review_comments_url": f"{api}/pulls/{n}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}", "comments_url": f"{api}/issues/{n}/comments",
            "statuses_url": f"{api}/statuses/{head_sha}", "number": n, "state": pr["state"], "locked": False,
            "title": pr["title"], "user": self._user(pr["user"]), "body": pr["body"],
            "labels": [self._label(base_repo, name) for name in pr["labels"]], "milestone": None,
            "created_at": pr["created_at"], "updated_at": pr["updated_at"], "closed_at": None, "merged_at": None,
            "merge_commit_sha": None, "assignee": None, "assignees": [], "requested_reviewers": [], "requested_teams": [],
            "head": self._ref(head_repo, pr["head_ref"], head_sha), "base": self._ref(base_repo, pr["base_ref"], pr["base_sha"]),
            "_links": {k: {"href": v} for k, v in links.items()}, "author_association": "CONTRIBUTOR",
            "auto_merge": None, "draft": pr["draft"],
        }
        if not simple:
            files = self._diff_files(pr)
            data.update(merged=False, mergeable=True, mergeable_state="clean", merged_by=None, comments=0,
                        review_comments=len([c for c in self.review_comments if c["pull"] == pr["id"]]),
                        maintainer_can_modify=pr["maintainer_can_modify"], commits=1,
                        additions=sum(f["additions"] for f in files), deletions=sum(f["deletions"] for f in files),
                        changed_files=len(files))
        return data

    def _review(self, review: dict) -> dict[str, Any]:
        pr = self._pull_by_id(review["pull"])
        api = f"{self.url}/repos/{pr['base_repo']}"
        html = f"{self.url}/{pr['base_repo']}/pull/{pr['number']}#pullrequestreview-{review['id']}"
        return {"id": review["id"], "node_id": f"PRR_{review['id']}", "user": self._user(review["user"]),
                "body": review["body"], "state": review["state"], "html_url": html,
                "pull_request_url": f"{api}/pulls/{pr['number']}", "commit_id": review["commit_id"],
                "author_association": "CONTRIBUTOR", "submitted_at": review["submitted_at"],
                "_links": {"html": {"href": html}, "pull_request": {"href": f"{api}/pulls/{pr['number']}"}}}

    def _review_comment(self, comment: dict) -> dict[str, Any]:
        pr = self._pull_by_id(comment["pull"])
        api = f"{self.url}/repos/{pr['base_repo']}"
        html = f"{self.url}/{pr['base_repo']}/pull/{pr['number']}#discussion_r{comment['id']}"
        return {"url": f"{api}/pulls/comments/{comment['id']}", "pull_request_review_id": comment["review"],
                "id": comment["id"], "node_id": f"PRRC_{comment['id']}", "diff_hunk": comment["diff_hunk"],
                "path": comment["path"], "position": comment["line"], "original_position": comment["line"],
                "commit_id": comment["commit_id"], "original_commit_id": comment["commit_id"],
                "user": self._user(comment["user"]), "body": comment["body"], "created_at": comment["created_at"],
                "updated_at": comment["updated_at"], "html_url": html, "pull_request_url": f"{api}/pulls/{pr['number']}",
                "author_association": "CONTRIBUTOR", "line": comment["line"], "original_line": comment["line"],
                "side": "RIGHT",
                "_links": {"self": {"href": f"{api}/pulls/comments/{comment['id']}"}, "html": {"href": html},
                           "pull_request": {"href": f"{api}/pulls/{pr['number']}"}}}

    def _issue_comment(self, comment: dict) -> dict[str, Any]:
        api = f"{self.url}/repos/{comment['repo']}"
        return {"id": comment["id"], "node_id": f"IC_{comment['id']}", "url": f"{api}/issues/comments/{comment['id']}",
                "html_url": f"{self.url}/{comment['repo']}/issues/{comment['issue']}#issuecomment-{comment['id']}",
                "body": comment["body"], "user": self._user(comment["user"]), "created_at": comment["created_at"],
                "updated_at": comment["updated_at"], "issue_url": f"{api}/issues/{comment['issue']}",
                "author_association": "CONTRIBUTOR"}

    def _installation(self, inst: Installation) -> dict[str, Any]:
        return {"id": inst.id, "account": self._user(inst.account), "repository_selection": "selected",
                "access_tokens_url": f"{self.url}/app/installations/{inst.id}/access_tokens",
                "repositories_url": f"{self.url}/installation/repositories",
                "html_url": f"{self.url}/settings/installations/{inst.id}", "app_id": inst.app_id,
                "target_id": self.user_ids.get(inst.account, 1), "target_type": "Organization",
                "permissions": inst.permissions, "events": ["issues", "issue_comment"], "created_at": "2024-01-01T00:00:00Z",
                "updated_at": _now(), "single_file_name": None, "app_slug": self.app_slugs[inst.app_id],
                "suspended_by": None, "suspended_at": None}

    # git-derived data --------------------------------------------------------------------------
    def _next_number(self, full_name: str) -> int:
        return 1 + len(self.pulls.get(full_name, [])) + len(self.issues.get(full_name, []))

    def _pull_by_id(self, pull_id: int) -> dict:
        return next(pr for prs in self.pulls.values() for pr in prs if pr["id"] == pull_id)

    def _diff_files(self, pr: dict) -> list[dict[str, Any]]:
        """diff-entry records of a pull request: base commit against the head branch's tip."""
        head_repo = self.repos[pr["head_repo"]]
        head = self.branch_head(head_repo.full_name, pr["head_ref"]) or pr["head_sha"]
        bare = head_repo.bare
        files = []
        status_names = {"A": "added", "M": "modified", "D": "removed", "R": "renamed", "C": "copied", "T": "changed"}
        stats = _git("diff", "--numstat", pr["base_sha"], head, cwd=bare).splitlines()
        kinds = dict(reversed(line.split("\t", 1)) for line in _git("diff", "--name-status", pr["base_sha"], head, cwd=bare).splitlines())
        for line in stats:
            added, deleted, path = line.split("\t", 2)
            patch = _git("diff", "--unified=3", pr["base_sha"], head, "--", path, cwd=bare)
            hunks = patch[patch.find("@@"):] if "@@" in patch else ""
            blob = f"{self.url}/{head_repo.full_name}/blob/{head}/{path}"
            files.append({
                "sha": _git("rev-parse", f"{head}:{path}", cwd=bare).strip() if kinds.get(path) != "D" else None,
                "filename": path, "status": status_names.get(kinds.get(path, "M")[0], "modified"),
                "additions": int(added) if added.isdigit() else 0, "deletions": int(deleted) if deleted.isdigit() else 0,
                "changes": (int(added) if added.isdigit() else 0) + (int(deleted) if deleted.isdigit() else 0),
                "blob_url": blob, "raw_url": blob.replace("/blob/", "/raw/"),
                "contents_url": f"{self.url}/repos/{head_repo.full_name}/contents/{path}?ref={head}", "patch": hunks})
        return files

    @staticmethod
    def _right_lines(patch: str) -> set[int]:
        """Lines of the new file that appear in a patch (added or context): where comments may go."""
        lines, current = set(), 0
        for row in patch.splitlines():
            m = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@", row)
            if m:
                current = int(m[1])
                continue
            if row.startswith("-") or row.startswith("\\"):
                continue
            lines.add(current)
            current += 1
        return lines

    def _hunk_for(self, pr: dict, path: str, line: int) -> str | None:
        for f in self._diff_files(pr):
            if f["filename"] == path and line in self._right_lines(f["patch"]):
                return f["patch"]
        return None

    # request handling --------------------------------------------------------------------------
    def _identity(self, auth: str | None) -> tuple[str, str | None, Installation | None]:
        """('anonymous'|'user'|'installation'|'app'|'bad', login, installation) for an Authorization header."""
        if not auth:
            return "anonymous", None, None
        scheme, _, credential = auth.partition(" ")
        if scheme.lower() == "bearer" and credential.count(".") == 2:
            return self._app_identity(credential)
        if scheme.lower() in ("token", "bearer"):
            if credential in self.users:
                return "user", self.users[credential], None
            if credential in self.installation_tokens:
                inst_id, expires = self.installation_tokens[credential]
                if time.time() < expires:
                    inst = self.installations[inst_id]
                    return "installation", f"{self.app_slugs[inst.app_id]}[bot]", inst
        return "bad", None, None

    def _app_identity(self, token: str) -> tuple[str, str | None, Installation | None]:
        import jwt  # PyJWT, installed with PyGithub

        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            app_id = int(claims["iss"])
            jwt.decode(token, self.app_keys[app_id], algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]})
        except Exception:  # noqa: BLE001 - any bad JWT is "Bad credentials"
            return "bad", None, None
        if claims["exp"] - claims["iat"] > 600 + 60:  # GitHub refuses JWTs that live longer than 10 minutes
            return "bad", None, None
        return "app", str(app_id), None

    def _can_write(self, kind: str, login: str | None, inst: Installation | None, repo: Repo, what: str) -> bool:
        if kind == "user":
            return login in repo.collaborators
        if kind == "installation":
            perm = {"contents": "contents", "pulls": "pull_requests", "issues": "issues"}[what]
            return repo.full_name in inst.repos and inst.permissions.get(perm) == "write"
        return False

    def _handler(self):
        gh = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, payload: Any = None, headers: dict | None = None) -> None:
                body = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
                self.send_header("X-RateLimit-Limit", "5000")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self._record["status"] = status
                self._record["response"] = payload

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw.strip() else None

            def _dispatch(self) -> None:
                url = urlparse(self.path)
                path = unquote(url.path)
                if path.startswith("/git/"):
                    return self._git_http(path, url.query)
                body = self._body()
                self._record = {"method": self.command, "path": path, "query": parse_qs(url.query), "body": body,
                                "auth": self.headers.get("Authorization"), "status": None, "response": None}
                with gh._lock:
                    gh.requests.append(self._record)
                    for fault in gh.faults:
                        if fault.times > 0 and fault.method == self.command and fault.path.fullmatch(path):
                            fault.times -= 1
                            return self._send(fault.status, fault.body, fault.headers)
                    kind, login, inst = gh._identity(self.headers.get("Authorization"))
                    if kind == "bad":
                        return self._send(401, BAD_CREDENTIALS)
                    self._who = (kind, login, inst)
                    for method, pattern, handler in ROUTES:
                        m = re.fullmatch(pattern, path)
                        if m and method == self.command:
                            return handler(self, body, self._record["query"], **m.groupdict())
                    self._send(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"})

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch

            # helpers
            def _not_found(self):
                self._send(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"})

            def _invalid(self, message: str, field_name: str = "base", code: str = "custom"):
                self._send(422, {"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest",
                                 "errors": [{"resource": "PullRequest", "field": field_name, "code": code, "message": message}],
                                 "status": "422"})

            def _forbidden(self, payload: dict = NOT_ACCESSIBLE):
                self._send(403, payload)

            def _need_auth(self) -> bool:
                if self._who[0] == "anonymous":
                    self._send(401, {"message": "Requires authentication", "documentation_url": "https://docs.github.com/rest",
                                     "status": "401"})
                    return False
                if self._who[0] == "app":  # a JWT only opens the app's own endpoints
                    self._send(401, {"message": "A JSON web token could not be decoded", "documentation_url":
                                     "https://docs.github.com/rest", "status": "401"})
                    return False
                return True

            def _repo(self, owner: str, repo: str) -> Repo | None:
                found = gh.repos.get(f"{owner}/{repo}")
                if found is None:
                    return None
                if found.ready_after > 0:
                    found.ready_after -= 1
                    return None
                kind, _, inst = self._who
                if kind == "installation" and found.full_name not in inst.repos:
                    return None
                return found

            def _pull_or_404(self, owner: str, repo: str, number: str) -> dict | None:
                """The pull request, or None after answering 404."""
                found = self._repo(owner, repo)
                pr = self._pull_record(found, number) if found else None
                if pr is None:
                    self._not_found()
                return pr

            def _pull_record(self, repo: Repo, number: str) -> dict | None:
                return next((p for p in gh.pulls.get(repo.full_name, []) if p["number"] == int(number)), None)

            # endpoints
            def get_user(self, body, query):
                if not self._need_auth():
                    return
                if self._who[0] == "installation":
                    return self._forbidden({"message": "Resource not accessible by integration", "status": "403",
                                            "documentation_url": "https://docs.github.com/rest/users/users"})
                self._send(200, gh._private_user(self._who[1]))

            def get_repo(self, body, query, owner, repo):
                found = self._repo(owner, repo)
                return self._send(200, gh._repo(found)) if found else self._not_found()

            def create_fork(self, body, query, owner, repo):
                if not self._need_auth():
                    return
                upstream = self._repo(owner, repo)
                if upstream is None:
                    return self._not_found()
                body = body or {}
                fork_owner = body.get("organization") or self._who[1]
                name = body.get("name") or repo
                full = f"{fork_owner}/{name}"
                if full not in gh.repos:
                    fork = gh.add_repo(full, source=upstream.bare, default_branch=upstream.default_branch,
                                       collaborators=(self._who[1],))
                    fork.parent = upstream.full_name
                    fork.ready_after = gh.fork_delay
                    for hook, script in gh.fork_hooks.items():
                        gh.set_hook(full, hook, script)
                self._send(202, gh._repo(gh.repos[full]))

            def list_pulls(self, body, query, owner, repo):
                found = self._repo(owner, repo)
                if found is None:
                    return self._not_found()
                state = query.get("state", ["open"])[0]
                head = query.get("head", [None])[0]
                out = []
                for pr in gh.pulls.get(found.full_name, []):
                    if state != "all" and pr["state"] != state:
                        continue
                    if head and f"{gh.repos[pr['head_repo']].owner}:{pr['head_ref']}" != head:
                        continue
                    out.append(gh._pull(pr, simple=True))
                self._send(200, out)

            def create_pull(self, body, query, owner, repo):
                if not self._need_auth():
                    return
                base_repo = self._repo(owner, repo)
                if base_repo is None:
                    return self._not_found()
                kind, login, inst = self._who
                if kind == "installation" and not gh._can_write(kind, login, inst, base_repo, "pulls"):
                    return self._forbidden({"message": "Resource not accessible by integration", "status": "403",
                                            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"})
                for key in ("title", "head", "base"):
                    if not (body or {}).get(key):
                        return self._invalid(f"{key} is missing", key, "missing_field")
                head_owner, _, head_ref = body["head"].rpartition(":")
                head_owner = head_owner or base_repo.owner
                head_repo = next((r for r in gh.repos.values() if r.owner == head_owner and
                                  (r.full_name == base_repo.full_name or r.parent == base_repo.full_name)), None)
                if head_repo is None or gh.branch_head(head_repo.full_name, head_ref) is None:
                    return self._invalid(f"head {body['head']} is not a branch", "head", "invalid")
                base_sha = gh.branch_head(base_repo.full_name, body["base"])
                if base_sha is None:
                    return self._invalid(f"base {body['base']} is not a branch", "base", "invalid")
                for pr in gh.pulls.get(base_repo.full_name, []):
                    if pr["state"] == "open" and pr["head_repo"] == head_repo.full_name and pr["head_ref"] == head_ref:
                        return self._invalid(f"A pull request already exists for {head_owner}:{head_ref}.")
                pid = next(gh._ids)
                record = {"id": pid, "number": gh._next_number(base_repo.full_name), "state": "open", "title": body["title"],
                          "body": body.get("body"), "user": login, "labels": [], "draft": bool(body.get("draft", False)),
                          "maintainer_can_modify": bool(body.get("maintainer_can_modify", True)),
                          "head_repo": head_repo.full_name, "head_ref": head_ref,
                          "head_sha": gh.branch_head(head_repo.full_name, head_ref), "base_repo": base_repo.full_name,
                          "base_ref": body["base"], "base_sha": base_sha, "created_at": _now(), "updated_at": _now()}
                gh.pulls.setdefault(base_repo.full_name, []).append(record)
                self._send(201, gh._pull(record), {"Location": f"{gh.url}/repos/{base_repo.full_name}/pulls/{record['number']}"})

            def get_pull(self, body, query, owner, repo, number):
                pr = self._pull_or_404(owner, repo, number)
                if pr is not None:
                    self._send(200, gh._pull(pr))

            def update_pull(self, body, query, owner, repo, number):
                if not self._need_auth():
                    return
                pr = self._pull_or_404(owner, repo, number)
                if pr is None:
                    return
                if self._who[1] != pr["user"] and not gh._can_write(*self._who, gh.repos[pr["base_repo"]], "pulls"):
                    return self._forbidden()
                for key in ("title", "body", "state"):
                    if key in (body or {}):
                        pr[key] = body[key]
                pr["updated_at"] = _now()
                self._send(200, gh._pull(pr))

            def pull_files(self, body, query, owner, repo, number):
                pr = self._pull_or_404(owner, repo, number)
                if pr is not None:
                    self._send(200, gh._diff_files(pr))

            def add_labels(self, body, query, owner, repo, number):
                if not self._need_auth():
                    return
                found = self._repo(owner, repo)
                if found is None:
                    return self._not_found()
                target = self._pull_record(found, number) or next(
                    (i for i in gh.issues.get(found.full_name, []) if i["number"] == int(number)), None)
                if target is None:
                    return self._not_found()
                if not gh._can_write(*self._who, found, "issues"):  # labelling needs triage access
                    return self._forbidden()
                names = body.get("labels", []) if isinstance(body, dict) else (body or [])
                for name in names:
                    if name not in target["labels"]:
                        target["labels"].append(name)
                self._send(200, [gh._label(found, name) for name in target["labels"]])

            def list_reviews(self, body, query, owner, repo, number):
                pr = self._pull_or_404(owner, repo, number)
                if pr is None:
                    return
                self._send(200, [gh._review(r) for r in gh.reviews if r["pull"] == pr["id"]])

            def create_review(self, body, query, owner, repo, number):
                if not self._need_auth():
                    return
                pr = self._pull_or_404(owner, repo, number)
                if pr is None:
                    return
                body = body or {}
                event = body.get("event")
                if event not in (None, "COMMENT", "APPROVE", "REQUEST_CHANGES"):
                    return self._invalid(f"event {event} is not valid", "event", "invalid")
                if event in ("COMMENT", "REQUEST_CHANGES") and not body.get("body"):
                    return self._invalid("Review body is required for COMMENT and REQUEST_CHANGES", "body", "missing_field")
                commit = body.get("commit_id") or gh.branch_head(pr["head_repo"], pr["head_ref"])
                comments = []
                for c in body.get("comments", []):
                    hunk = gh._hunk_for(pr, c.get("path", ""), int(c.get("line", 0)))
                    if hunk is None or c.get("side", "RIGHT") != "RIGHT":
                        return self._invalid("pull_request_review_thread.line must be part of the diff", "line", "invalid")
                    comments.append((c, hunk))
                rid = next(gh._ids)
                review = {"id": rid, "pull": pr["id"], "user": self._who[1], "body": body.get("body", ""),
                          "state": {"COMMENT": "COMMENTED", "APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED"}.get(event, "PENDING"),
                          "commit_id": commit, "submitted_at": _now()}
                gh.reviews.append(review)
                for c, hunk in comments:
                    gh.review_comments.append({"id": next(gh._ids), "pull": pr["id"], "review": rid, "user": self._who[1],
                                               "path": c["path"], "line": int(c["line"]), "body": c["body"], "commit_id": commit,
                                               "diff_hunk": hunk, "created_at": _now(), "updated_at": _now()})
                self._send(200, gh._review(review))

            def update_review(self, body, query, owner, repo, number, review_id):
                if not self._need_auth():
                    return
                review = next((r for r in gh.reviews if r["id"] == int(review_id)), None)
                if review is None:
                    return self._not_found()
                if review["user"] != self._who[1]:
                    return self._forbidden()
                if not (body or {}).get("body"):
                    return self._invalid("body is missing", "body", "missing_field")
                review["body"] = body["body"]
                self._send(200, gh._review(review))

            def review_comments_of(self, body, query, owner, repo, number, review_id):
                self._send(200, [gh._review_comment(c) for c in gh.review_comments if c["review"] == int(review_id)])

            def list_pull_comments(self, body, query, owner, repo, number):
                pr = self._pull_or_404(owner, repo, number)
                if pr is None:
                    return
                self._send(200, [gh._review_comment(c) for c in gh.review_comments if c["pull"] == pr["id"]])

            def create_pull_comment(self, body, query, owner, repo, number):
                if not self._need_auth():
                    return
                pr = self._pull_or_404(owner, repo, number)
                if pr is None:
                    return
                body = body or {}
                for key in ("body", "commit_id", "path", "line"):
                    if key not in body:
                        return self._invalid(f"{key} is missing", key, "missing_field")
                hunk = gh._hunk_for(pr, body["path"], int(body["line"]))
                if hunk is None:
                    return self._invalid("pull_request_review_thread.line must be part of the diff", "line", "invalid")
                rid = next(gh._ids)  # GitHub wraps a lone comment in a review of its own
                gh.reviews.append({"id": rid, "pull": pr["id"], "user": self._who[1], "body": "", "state": "COMMENTED",
                                   "commit_id": body["commit_id"], "submitted_at": _now()})
                comment = {"id": next(gh._ids), "pull": pr["id"], "review": rid, "user": self._who[1], "path": body["path"],
                           "line": int(body["line"]), "body": body["body"], "commit_id": body["commit_id"], "diff_hunk": hunk,
                           "created_at": _now(), "updated_at": _now()}
                gh.review_comments.append(comment)
                self._send(201, gh._review_comment(comment))

            def edit_pull_comment(self, body, query, owner, repo, comment_id):
                if not self._need_auth():
                    return
                comment = next((c for c in gh.review_comments if c["id"] == int(comment_id)), None)
                if comment is None:
                    return self._not_found()
                if comment["user"] != self._who[1]:
                    return self._forbidden()
                comment.update(body=(body or {}).get("body", comment["body"]), updated_at=_now())
                self._send(200, gh._review_comment(comment))

            def delete_pull_comment(self, body, query, owner, repo, comment_id):
                if not self._need_auth():
                    return
                comment = next((c for c in gh.review_comments if c["id"] == int(comment_id)), None)
                if comment is None:
                    return self._not_found()
                if comment["user"] != self._who[1]:
                    return self._forbidden()
                gh.review_comments.remove(comment)
                self._send(204)

            def _issue_exists(self, repo: Repo, number: str) -> bool:
                return self._pull_record(repo, number) is not None or any(
                    i["number"] == int(number) for i in gh.issues.get(repo.full_name, []))

            def list_issue_comments(self, body, query, owner, repo, number):
                found = self._repo(owner, repo)
                if found is None or not self._issue_exists(found, number):
                    return self._not_found()
                self._send(200, [gh._issue_comment(c) for c in gh.issue_comments
                                 if c["repo"] == found.full_name and c["issue"] == int(number)])

            def create_issue_comment(self, body, query, owner, repo, number):
                if not self._need_auth():
                    return
                found = self._repo(owner, repo)
                if found is None or not self._issue_exists(found, number):
                    return self._not_found()
                if self._who[0] == "installation" and not gh._can_write(*self._who, found, "issues"):
                    return self._forbidden({"message": "Resource not accessible by integration", "status": "403",
                                            "documentation_url": "https://docs.github.com/rest/issues/comments"})
                if not (body or {}).get("body"):
                    return self._invalid("body is missing", "body", "missing_field")
                comment = {"id": next(gh._ids), "repo": found.full_name, "issue": int(number), "user": self._who[1],
                           "body": body["body"], "created_at": _now(), "updated_at": _now()}
                gh.issue_comments.append(comment)
                self._send(201, gh._issue_comment(comment))

            def edit_issue_comment(self, body, query, owner, repo, comment_id):
                if not self._need_auth():
                    return
                comment = next((c for c in gh.issue_comments if c["id"] == int(comment_id)
                                and c["repo"] == f"{owner}/{repo}"), None)
                if comment is None:
                    return self._not_found()
                if comment["user"] != self._who[1]:
                    return self._forbidden()
                comment.update(body=(body or {}).get("body", comment["body"]), updated_at=_now())
                self._send(200, gh._issue_comment(comment))

            def repo_installation(self, body, query, owner, repo):
                if self._who[0] != "app":
                    return self._send(401, {"message": "A JSON web token could not be decoded", "status": "401",
                                            "documentation_url": "https://docs.github.com/rest"})
                app_id = int(self._who[1])
                inst = next((i for i in gh.installations.values() if i.app_id == app_id and f"{owner}/{repo}" in i.repos), None)
                return self._send(200, gh._installation(inst)) if inst else self._not_found()

            def access_token(self, body, query, installation_id):
                if self._who[0] != "app":
                    return self._send(401, {"message": "A JSON web token could not be decoded", "status": "401",
                                            "documentation_url": "https://docs.github.com/rest"})
                inst = gh.installations.get(int(installation_id))
                if inst is None or inst.app_id != int(self._who[1]):
                    return self._not_found()
                token = f"ghs_{base64.b32encode(os.urandom(20)).decode().rstrip('=')}"
                expires = time.time() + gh.token_ttl_s
                gh.installation_tokens[token] = (inst.id, expires)
                self._send(201, {"token": token, "expires_at": datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                 "permissions": inst.permissions, "repository_selection": "selected"})

            # smart HTTP for git, through git's own http-backend, with Basic auth as on github.com
            def _git_http(self, path: str, query: str) -> None:
                auth = self.headers.get("Authorization")
                gh.git_auth.append(auth)
                m = re.match(r"^/git/(?P<owner>[^/]+)/(?P<name>[^/]+)\.git(?P<rest>/.*)$", path)
                repo = gh.repos.get(f"{m['owner']}/{m['name']}") if m else None
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                pushing = "git-receive-pack" in path or "service=git-receive-pack" in query
                if repo is None or (pushing and not self._git_push_allowed(auth, repo)):
                    self.send_response(401 if repo else 404)
                    self.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                env = {"PATH": os.environ.get("PATH", ""), "GIT_PROJECT_ROOT": str(repo.bare.parent),
                       "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": f"/{repo.name}.git{m['rest']}", "REMOTE_USER": "pusher",
                       "REMOTE_ADDR": "127.0.0.1", "REQUEST_METHOD": self.command, "QUERY_STRING": query,
                       "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(data)),
                       "GIT_CONFIG_NOSYSTEM": "1", "HOME": os.devnull}
                if self.headers.get("Content-Encoding"):
                    env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
                proc = subprocess.run(["git", "http-backend"], env=env, input=data, capture_output=True)
                head, _, payload = proc.stdout.partition(b"\r\n\r\n")
                status, headers = 200, []
                for line in head.decode("latin-1").split("\r\n"):
                    key, _, value = line.partition(":")
                    if key.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif key:
                        headers.append((key, value.strip()))
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _git_push_allowed(self, auth: str | None, repo: Repo) -> bool:
                if not auth or not auth.lower().startswith("basic "):
                    return False
                user, _, secret = base64.b64decode(auth.split(" ", 1)[1]).decode().partition(":")
                kind, login, inst = gh._identity(f"token {secret}")
                return kind in ("user", "installation") and gh._can_write(kind, login, inst, repo, "contents")

        repo_path = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        ROUTES = [
            ("GET", r"/user", Handler.get_user),
            ("GET", repo_path, Handler.get_repo),
            ("POST", repo_path + r"/forks", Handler.create_fork),
            ("GET", repo_path + r"/pulls", Handler.list_pulls),
            ("POST", repo_path + r"/pulls", Handler.create_pull),
            ("PATCH", repo_path + r"/pulls/comments/(?P<comment_id>\d+)", Handler.edit_pull_comment),
            ("DELETE", repo_path + r"/pulls/comments/(?P<comment_id>\d+)", Handler.delete_pull_comment),
            ("GET", repo_path + r"/pulls/(?P<number>\d+)", Handler.get_pull),
            ("PATCH", repo_path + r"/pulls/(?P<number>\d+)", Handler.update_pull),
            ("GET", repo_path + r"/pulls/(?P<number>\d+)/files", Handler.pull_files),
            ("GET", repo_path + r"/pulls/(?P<number>\d+)/reviews", Handler.list_reviews),
            ("POST", repo_path + r"/pulls/(?P<number>\d+)/reviews", Handler.create_review),
            ("PUT", repo_path + r"/pulls/(?P<number>\d+)/reviews/(?P<review_id>\d+)", Handler.update_review),
            ("GET", repo_path + r"/pulls/(?P<number>\d+)/reviews/(?P<review_id>\d+)/comments", Handler.review_comments_of),
            ("GET", repo_path + r"/pulls/(?P<number>\d+)/comments", Handler.list_pull_comments),
            ("POST", repo_path + r"/pulls/(?P<number>\d+)/comments", Handler.create_pull_comment),
            ("POST", repo_path + r"/issues/(?P<number>\d+)/labels", Handler.add_labels),
            ("GET", repo_path + r"/issues/(?P<number>\d+)/comments", Handler.list_issue_comments),
            ("POST", repo_path + r"/issues/(?P<number>\d+)/comments", Handler.create_issue_comment),
            ("PATCH", repo_path + r"/issues/comments/(?P<comment_id>\d+)", Handler.edit_issue_comment),
            ("GET", repo_path + r"/installation", Handler.repo_installation),
            ("POST", r"/app/installations/(?P<installation_id>\d+)/access_tokens", Handler.access_token),
        ]
        return Handler
