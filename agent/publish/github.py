"""The GitHub client: forks, draft pull requests, reviews and comments, on PyGithub.

Everything the tool does on GitHub goes through `GitHubClient`: the publish stage (fork, PR,
labels), `integrate verify --post` (a review with line comments) and the bot (its one status
comment per job). Each operation is idempotent where GitHub allows it, so a re-run or a resumed
run updates what an earlier one made instead of adding a second copy:

- a pull request is found by its head branch and updated in place;
- the tool's review is found by a hidden marker and edited; its line comments are matched by
  (rule, path, line), edited or deleted in place, and only findings on lines that had none get
  a new comment (GitHub cannot add a comment to a review already submitted);
- a status comment is found by its marker and edited.

Failures surface as one line (`IntegrateError`): 401 and 403 name the operation and what the
credentials lack; rate limits (403 or 429 with Retry-After, GitHub's secondary-limit bodies, a
spent primary quota) are retried by PyGithub's GithubRetry on our `RetryPolicy`, and when the
retries run out the line says so. See docs/publishing.md.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests
from github import Auth, Github, GithubException, GithubRetry
from github.GithubException import RateLimitExceededExceedsMaxWait

from agent.errors import IntegrateError
from agent.publish.github_auth import DEFAULT_API_URL, api_url_from_env, auth_from_env
from agent.publish.retry import RetryPolicy
from agent.redact import redact_text

# PyGithub installs a console handler at INFO and logs every retried request on it: warnings only
logging.getLogger("github").setLevel(logging.WARNING)

PR_MARKER = "integrate:pr"
REVIEW_MARKER = "integrate:verify"
FORK_WAIT_S = 120.0  # GitHub creates forks asynchronously; "may take up to 5 minutes" on big repos
FORK_POLL_S = 2.0


def marker_line(kind: str, **fields: str) -> str:
    """A hidden HTML comment that lets the tool find what it wrote before."""
    extra = "".join(f" {k}={v}" for k, v in fields.items())
    return f"<!-- {kind}{extra} -->"


def marker_fields(text: str | None, kind: str) -> dict[str, str] | None:
    """The fields of the `kind` marker in text, or None when there is none."""
    m = re.search(rf"<!-- {re.escape(kind)}((?: [\w-]+=[^\s>]*)*) -->", text or "")
    if not m:
        return None
    return dict(pair.split("=", 1) for pair in m[1].split())


def _with_marker(body: str, kind: str, **fields: str) -> str:
    body = re.sub(rf"\n*<!-- {re.escape(kind)}(?: [^>]*)? -->\n?", "\n", body).rstrip()
    return f"{body}\n\n{marker_line(kind, **fields)}\n"


@dataclass(frozen=True)
class RepoInfo:
    full_name: str
    default_branch: str
    clone_url: str
    html_url: str
    fork: bool
    parent: str | None

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]


@dataclass(frozen=True)
class PullInfo:
    number: int
    html_url: str
    state: str
    draft: bool
    title: str
    body: str
    labels: tuple[str, ...]
    head_repo: str
    head_ref: str
    head_sha: str
    head_clone_url: str
    base_repo: str
    base_ref: str


@dataclass(frozen=True)
class PullResult:
    pull: PullInfo
    created: bool
    labels_added: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LineComment:
    """A finding on one line of the pull request's new version of `path`."""

    path: str
    line: int
    body: str
    rule: str = ""

    @property
    def key(self) -> str:
        return f"{self.rule or '-'}@{self.path}:{self.line}"


@dataclass
class ReviewResult:
    review_id: int
    html_url: str
    created: bool
    comments_created: int = 0
    comments_edited: int = 0
    comments_deleted: int = 0
    comments_unchanged: int = 0
    outside_diff: list[LineComment] = field(default_factory=list)


@dataclass(frozen=True)
class CommentInfo:
    id: int
    html_url: str
    body: str
    created: bool = False


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.data or "").strip()
    errors = data.get("errors") or []
    details = [e.get("message") or e.get("code") for e in errors if isinstance(e, dict)]
    return "; ".join([message, *[d for d in details if d]]) or f"HTTP {exc.status}"


@contextmanager
def github_errors(what: str) -> Iterator[None]:
    """Turn what PyGithub and requests raise into one line that says what we were doing."""
    try:
        yield
    except RateLimitExceededExceedsMaxWait as exc:
        raise IntegrateError(redact_text(f"GitHub: could not {what}: rate limited, and the wait asked for "
                                         f"({exc.wait:.0f} s) is longer than we wait; try again later")) from None
    except GithubException as exc:
        if exc.status == 401:
            hint = "the credentials were refused (check GITHUB_TOKEN, or the App's id and key)"
        elif exc.status == 403 and "rate limit" in _message(exc).lower():
            hint = "rate limited and the retries ran out; try again later"
        elif exc.status == 403:
            hint = "permission denied (the token or App lacks access to this repository or action)"
        elif exc.status == 404:
            hint = "not found (or not visible to these credentials)"
        elif exc.status == 429:
            hint = "rate limited and the retries ran out; try again later"
        else:
            hint = f"HTTP {exc.status}"
        raise IntegrateError(redact_text(f"GitHub: could not {what}: {hint}: {exc.status} {_message(exc)}")) from None
    except requests.exceptions.RetryError as exc:
        reason = getattr(exc.args[0], "reason", None) if exc.args else None  # urllib3's MaxRetryError
        raise IntegrateError(redact_text(f"GitHub: could not {what}: rate limited or unavailable, still refused after "
                                         f"the retries ({reason or exc}); try again later")) from None
    except requests.exceptions.RequestException as exc:
        raise IntegrateError(redact_text(f"GitHub: could not {what}: cannot reach the API: {exc.__class__.__name__}")) from None


def github_retry(policy: RetryPolicy) -> GithubRetry:
    """PyGithub's GitHub-aware retry (403 + Retry-After, secondary-limit bodies, primary quota
    reset), plus 429, on our numbers."""
    return GithubRetry(
        total=policy.retries,
        backoff_factor=policy.backoff_s,
        backoff_max=policy.max_wait_s,
        secondary_rate_wait=policy.secondary_wait_s,
        max_rate_limit_wait=policy.max_wait_s,
        status_forcelist=[429, *range(500, 600)],
        respect_retry_after_header=True,
    )


class GitHubClient:
    """One GitHub account or App installation, on one API (github.com, GHES or a stand-in)."""

    def __init__(self, auth: Auth.Auth | None, api_url: str = DEFAULT_API_URL, policy: RetryPolicy | None = None,
                 timeout_s: float = 60.0, pace_s: tuple[float, float] | None = None) -> None:
        """`pace_s`: (seconds between requests, seconds between writes); by default PyGithub's
        (0.25, 1.0), GitHub's advice for staying clear of secondary rate limits."""
        self.api_url = api_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self._auth = auth
        pace = {} if pace_s is None else {"seconds_between_requests": pace_s[0], "seconds_between_writes": pace_s[1]}
        self._gh = Github(auth=auth, base_url=self.api_url, retry=github_retry(self.policy), timeout=int(timeout_s),
                          per_page=100, lazy=True, **pace)

    @classmethod
    def from_env(cls, repo: str | None = None, env: Mapping[str, str] = os.environ, policy: RetryPolicy | None = None) -> GitHubClient:
        """Credentials and API URL from the environment (see github_auth); `repo` is where an
        App's installation is looked up when GITHUB_APP_INSTALLATION_ID is not set."""
        api_url = api_url_from_env(env)
        return cls(auth_from_env(repo, env, api_url), api_url, policy)

    # credentials -----------------------------------------------------------------------------
    def token(self) -> str | None:
        """The current token, for git over HTTPS (an App's installation token is renewed first
        when it is about to expire)."""
        if self._auth is None:
            return None
        with github_errors("get an access token"):
            return self._auth.token

    def login(self) -> str:
        """The account the token belongs to (GET /user; Apps have none: pass --fork)."""
        with github_errors("read the authenticated user (GET /user)"):
            return self._gh.get_user().login

    # repositories ----------------------------------------------------------------------------
    def repo(self, full_name: str) -> RepoInfo:
        with github_errors(f"read the repository {full_name}"):
            return self._repo_info(full_name)

    def _repo_info(self, full_name: str) -> RepoInfo:
        r = self._gh.get_repo(full_name)
        r.complete()
        parent = r.parent.full_name if r.fork and r.parent else None
        return RepoInfo(r.full_name, r.default_branch, r.clone_url, r.html_url, bool(r.fork), parent)

    def ensure_fork(self, upstream: RepoInfo, fork: str | None = None, wait_s: float = FORK_WAIT_S,
                    poll_s: float = FORK_POLL_S) -> RepoInfo:
        """The fork to push to: `fork` (owner/name) or the authenticated user's fork of the
        upstream, created through the API when missing and waited for until it answers."""
        if fork:
            owner, name = fork.split("/", 1)
        else:
            try:
                owner, name = self.login(), upstream.full_name.split("/", 1)[1]
            except IntegrateError:
                raise IntegrateError("GitHub: these credentials have no user account to fork to (a GitHub App?): pass "
                                     f"--fork OWNER/NAME, or --fork {upstream.full_name} to push a branch there") from None
        full = f"{owner}/{name}"
        if full == upstream.full_name:
            return upstream  # pushing to a branch of the upstream itself (a bot with write access)
        existing = self._lookup(full)
        if existing is None:
            with github_errors(f"fork {upstream.full_name} to {full}"):
                args = {"name": name, "default_branch_only": True}
                if fork and owner != self._login_or_none():
                    args["organization"] = owner
                self._gh.get_repo(upstream.full_name).create_fork(**args)
            deadline = time.monotonic() + wait_s
            while existing is None:
                if time.monotonic() > deadline:
                    raise IntegrateError(f"GitHub: the fork {full} did not appear within {wait_s:.0f} s; "
                                         "run again (integrate resume) once it shows on GitHub")
                time.sleep(poll_s)
                existing = self._lookup(full)
        if existing.parent != upstream.full_name:
            raise IntegrateError(f"GitHub: {full} exists but is not a fork of {upstream.full_name}; pass --fork OWNER/NAME of a fork")
        return existing

    def _login_or_none(self) -> str | None:
        try:
            return self._gh.get_user().login
        except GithubException:
            return None  # an App has no user

    def _lookup(self, full_name: str) -> RepoInfo | None:
        try:
            with github_errors(f"read the repository {full_name}"):
                return self._repo_info(full_name)
        except IntegrateError as exc:
            if ": not found" in exc.message:
                return None
            raise

    # pull requests ---------------------------------------------------------------------------
    @staticmethod
    def _pull_info(pr) -> PullInfo:
        head_repo = pr.head.repo
        return PullInfo(
            number=pr.number, html_url=pr.html_url, state=pr.state, draft=bool(pr.draft), title=pr.title,
            body=pr.body or "", labels=tuple(label.name for label in pr.labels),
            head_repo=head_repo.full_name if head_repo else "", head_ref=pr.head.ref, head_sha=pr.head.sha,
            head_clone_url=head_repo.clone_url if head_repo else "", base_repo=pr.base.repo.full_name, base_ref=pr.base.ref)

    def find_pull(self, upstream: str, head_owner: str, branch: str) -> PullInfo | None:
        """The open pull request on `upstream` whose head is head_owner:branch, if any."""
        with github_errors(f"list the pull requests of {upstream}"):
            pulls = self._gh.get_repo(upstream).get_pulls(state="open", head=f"{head_owner}:{branch}")
            for pr in pulls:
                if pr.head.ref == branch:
                    return self._pull_info(pr)
        return None

    def get_pull(self, repo: str, number: int) -> PullInfo:
        with github_errors(f"read pull request {repo}#{number}"):
            pr = self._gh.get_repo(repo).get_pull(number)
            pr.complete()
            return self._pull_info(pr)

    def open_or_update_pull(self, upstream: RepoInfo, head_owner: str, branch: str, title: str, body: str,
                            labels: tuple[str, ...] = (), head_sha: str | None = None, base: str | None = None,
                            existing: PullInfo | None | object = ...) -> PullResult:
        """A draft pull request from head_owner:branch into the upstream's default branch (or
        `base`). An open one for the same head is updated (title, body, labels added) instead
        of opening another (`existing`: what find_pull returned, when the caller already asked).
        `head_sha` is recorded in a hidden marker: the commit this tool pushed, which a later
        run may replace without losing anybody else's work."""
        body = _with_marker(body, PR_MARKER, **({"head": head_sha} if head_sha else {}))
        if existing is ...:
            existing = self.find_pull(upstream.full_name, head_owner, branch)
        created = existing is None
        head = branch if head_owner == upstream.owner else f"{head_owner}:{branch}"
        gh_repo = self._gh.get_repo(upstream.full_name)
        if existing is None:
            with github_errors(f"open the pull request {head} -> {upstream.full_name}:{base or upstream.default_branch}"):
                try:
                    pr = gh_repo.create_pull(base=base or upstream.default_branch, head=head, title=title, body=body,
                                             draft=True, maintainer_can_modify=True)
                except GithubException as exc:
                    # a retried POST whose first try got through: GitHub says it exists, use that one
                    if exc.status != 422 or "already exists" not in _message(exc):
                        raise
                    found = self.find_pull(upstream.full_name, head_owner, branch)
                    if found is None:
                        raise
                    pr, created = gh_repo.get_pull(found.number), False
                    pr.edit(title=title, body=body)
        else:
            with github_errors(f"update pull request {upstream.full_name}#{existing.number}"):
                pr = gh_repo.get_pull(existing.number)
                pr.edit(title=title, body=body)
        notes: list[str] = []
        added: tuple[str, ...] = ()
        missing = [label for label in labels if existing is None or label not in existing.labels]
        if missing:
            try:
                with github_errors(f"label pull request {upstream.full_name}#{pr.number}"):
                    pr.add_to_labels(*missing)
                added = tuple(missing)
            except IntegrateError as exc:
                if "permission denied" not in exc.message:
                    raise
                # labelling needs triage access to the upstream, which a contributor's token lacks
                notes.append(f"labels not applied ({', '.join(missing)}): the credentials cannot label on {upstream.full_name}")
        with github_errors(f"read pull request {upstream.full_name}#{pr.number}"):
            info = self.get_pull(upstream.full_name, pr.number)
        return PullResult(info, created, added, tuple(notes))

    # reviews ---------------------------------------------------------------------------------
    def changed_lines(self, repo: str, number: int) -> dict[str, set[int]]:
        """Per file, the lines of its new version that the pull request's diff shows (added or
        context): the only lines a review comment may sit on."""
        out: dict[str, set[int]] = {}
        with github_errors(f"list the files of {repo}#{number}"):
            for f in self._gh.get_repo(repo).get_pull(number).get_files():
                out[f.filename] = diff_right_lines(f.patch or "")
        return out

    def post_review(self, repo: str, number: int, summary: str, comments: list[LineComment] | tuple[LineComment, ...] = (),
                    marker: str = REVIEW_MARKER) -> ReviewResult:
        """Post the tool's review (event COMMENT), or bring its earlier one up to date.

        Comments on lines outside the diff cannot be line comments; they are returned in
        `outside_diff` and listed at the end of the summary instead."""
        changed = self.changed_lines(repo, number)
        wanted: dict[str, LineComment] = {}
        outside: list[LineComment] = []
        for c in comments:
            if c.line in changed.get(c.path, set()):
                if c.key in wanted:  # two findings of one rule on one line: one comment
                    c = LineComment(c.path, c.line, f"{wanted[c.key].body}\n\n{c.body}", c.rule)
                wanted[c.key] = c
            else:
                outside.append(c)
        body = summary.rstrip()
        if outside:
            body += "\n\nFindings outside the lines this pull request changes:\n" + "\n".join(
                f"- `{c.path}:{c.line}` {c.body.splitlines()[0] if c.body else ''}" for c in outside)
        body = _with_marker(body, marker)

        def comment_body(c: LineComment) -> str:
            return _with_marker(c.body, marker, key=c.key)

        with github_errors(f"post the review on {repo}#{number}"):
            pr = self._gh.get_repo(repo).get_pull(number)
            own = [r for r in pr.get_reviews() if marker_fields(r.body, marker) is not None]
            existing = {}
            for comment in pr.get_review_comments():
                fields = marker_fields(comment.body, marker)
                if fields and "key" in fields:
                    existing.setdefault(fields["key"], []).append(comment)
            if not own:
                review = pr.create_review(body=body, event="COMMENT", comments=[
                    {"path": c.path, "line": c.line, "side": "RIGHT", "body": comment_body(c)} for c in wanted.values()])
                result = ReviewResult(review.id, review.html_url, True, comments_created=len(wanted), outside_diff=outside)
            else:
                review = own[0]
                review.edit(body)
                result = ReviewResult(review.id, review.html_url, False, outside_diff=outside)
            if own or existing:
                head_sha = pr.head.sha
                for key, found in existing.items():
                    keep, extra = found[0], found[1:]
                    for c in ([keep] if key not in wanted else []) + extra:
                        c.delete()
                        result.comments_deleted += 1
                    if key in wanted:
                        target = comment_body(wanted[key])
                        if keep.body != target:
                            keep.edit(target)
                            result.comments_edited += 1
                        else:
                            result.comments_unchanged += 1
                if own:
                    for key, c in wanted.items():
                        if key not in existing:
                            pr.create_review_comment(comment_body(c), head_sha, c.path, line=c.line, side="RIGHT")
                            result.comments_created += 1
        return result

    # issue comments (the bot's status comment) --------------------------------------------
    def comments(self, repo: str, issue: int) -> list[CommentInfo]:
        with github_errors(f"list the comments of {repo}#{issue}"):
            return [CommentInfo(c.id, c.html_url, c.body or "") for c in self._gh.get_repo(repo).get_issue(issue).get_comments()]

    def create_comment(self, repo: str, issue: int, body: str) -> CommentInfo:
        with github_errors(f"comment on {repo}#{issue}"):
            c = self._gh.get_repo(repo).get_issue(issue).create_comment(body)
            return CommentInfo(c.id, c.html_url, c.body or "", created=True)

    def edit_comment(self, repo: str, issue: int, comment_id: int, body: str) -> CommentInfo:
        with github_errors(f"edit comment {comment_id} on {repo}#{issue}"):
            c = self._gh.get_repo(repo).get_issue(issue).get_comment(comment_id)
            c.edit(body)
            return CommentInfo(c.id, c.html_url, c.body or "")

    def upsert_comment(self, repo: str, issue: int, marker: str, body: str) -> CommentInfo:
        """The one comment carrying `marker` on the issue: edited in place, created if absent."""
        body = _with_marker(body, marker)
        for c in self.comments(repo, issue):
            if marker_fields(c.body, marker) is not None:
                return c if c.body == body else self.edit_comment(repo, issue, c.id, body)
        return self.create_comment(repo, issue, body)


PULL_URL = re.compile(r"^https?://[^/]+/(?P<repo>[\w.-]+/[\w.-]+)/pulls?/(?P<number>\d+)(?:[/?#].*)?$")
PULL_SHORT = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)#(?P<number>\d+)$")


def parse_pull_ref(text: str) -> tuple[str, int] | None:
    """(owner/name, number) from a pull request URL or `owner/name#N`; None for anything else
    (a local path, say)."""
    m = PULL_URL.match(text.strip()) or PULL_SHORT.match(text.strip())
    return (m["repo"], int(m["number"])) if m else None


def diff_right_lines(patch: str) -> set[int]:
    """Line numbers of the new file that a unified-diff patch shows (added or context)."""
    lines: set[int] = set()
    current = 0
    for row in patch.splitlines():
        m = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@", row)
        if m:
            current = int(m[1])
        elif row.startswith(("-", "\\")):
            continue
        elif current:
            lines.add(current)
            current += 1
    return lines
