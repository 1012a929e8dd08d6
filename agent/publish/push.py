"""Push a run's branch to a fork with git, the token reaching git only through its environment.

Every git command of the publish step goes through `_git`, one function, so it can move onto
the hardened runner (agent/gitsafe.py) without touching the rest. Here it runs through
GitPython with:

- the token in an `http.<url>.extraHeader` set by GIT_CONFIG_COUNT/KEY/VALUE in git's
  environment, scoped to the one push URL: never in argv, the remote URL, a config file, a log
  or an error message (GitHub takes `x-access-token:<token>` as Basic credentials, for personal,
  Actions and App installation tokens alike);
- hooks off (core.hooksPath=/dev/null), fsmonitor off, credential helpers and askpass emptied,
  no terminal prompt, so nothing in the checkout can run with the token in its environment;
- every other variable that names a secret (GITHUB_TOKEN, HF_TOKEN, ...) blanked, since
  GitPython copies the parent's environment into git's.

The branch is pushed without force unless what the fork has is a commit this tool pushed before
(`replaceable`, read from the pull request's marker): then with --force-with-lease on exactly
that commit, so a commit someone else added in between is never overwritten.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import git

from agent.errors import IntegrateError
from agent.redact import SECRET_NAME, redact_text

# settings no repository, user or system config file can turn back on for these commands
OVERRIDES = {
    "core.hooksPath": os.devnull,
    "core.fsmonitor": "false",
    "credential.helper": "",
    "core.askPass": "",
    "push.recurseSubmodules": "no",
    "push.gpgSign": "false",
}


@dataclass(frozen=True)
class PushResult:
    url: str  # without credentials
    branch: str
    local: str
    remote_before: str | None
    forced: bool
    pushed: bool  # False when the fork already had this very commit


def auth_header(token: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


def git_environment(url: str, token: str | None) -> dict[str, str]:
    """The environment overrides for one git command talking to `url` (see the module doc)."""
    settings = dict(OVERRIDES)
    if token and urlsplit(url).scheme in ("http", "https"):
        settings[f"http.{url}.extraHeader"] = auth_header(token)
    env = {name: "" for name in os.environ if SECRET_NAME.search(name)}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "", "GIT_CONFIG_COUNT": str(len(settings))})
    for n, (key, value) in enumerate(settings.items()):
        env[f"GIT_CONFIG_KEY_{n}"] = key
        env[f"GIT_CONFIG_VALUE_{n}"] = value
    return env


def display_url(url: str) -> str:
    """A URL as it may be shown: any user:password part removed."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        parts = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))
    return urlunsplit(parts)


def _git(repo_dir: Path, args: list[str], url: str, token: str | None, ok: tuple[int, ...] = (0,)) -> tuple[int, str, str]:
    """The one place the publish step runs git: (status, stdout, stderr)."""
    runner = git.Git(str(repo_dir))
    status, out, err = runner.execute(["git", *args], env=git_environment(url, token), with_extended_output=True,
                                      with_exceptions=False, stdout_as_string=True)
    if status not in ok:
        raise IntegrateError(_one_line(f"git {args[0]} to {display_url(url)} failed: {_reason(out, err, status)}", token))
    return status, out, err


def _reason(out: str, err: str, status: int) -> str:
    """Why git failed, in a few words: a rejected ref's reason (porcelain `!` lines) and what the
    server said (`remote:` lines), else git's last line."""
    rejected = [line.split("\t")[-1] for line in (out or "").splitlines() if line.startswith("!")]
    remote = [line.removeprefix("remote:").strip() for line in (err or "").splitlines()
              if line.startswith("remote:") and line.removeprefix("remote:").strip()]
    if rejected:
        return "rejected " + "; ".join(rejected) + (f" (the server said: {remote[0]})" if remote else "")
    last = [line for line in (err or "").strip().splitlines() if line.strip()]
    return last[-1] if last else f"exit {status}"


def _one_line(message: str, token: str | None) -> str:
    secrets = [token, auth_header(token).split(" ", 2)[-1]] if token else []
    return redact_text(" ".join(message.split()), secrets)


def remote_head(repo_dir: Path, url: str, branch: str, token: str | None) -> str | None:
    _, out, _ = _git(repo_dir, ["ls-remote", "--heads", url, f"refs/heads/{branch}"], url, token)
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    return None


def local_head(repo_dir: Path, branch: str) -> str:
    status, out, _ = _git(repo_dir, ["rev-parse", "--verify", "-q", f"refs/heads/{branch}^{{commit}}"], "", None, ok=(0, 1))
    if status != 0:
        raise IntegrateError(f"branch {branch} not found in {repo_dir}; nothing to push")
    return out.strip()


def _is_ancestor(repo_dir: Path, older: str, newer: str) -> bool:
    status, _, _ = _git(repo_dir, ["merge-base", "--is-ancestor", older, newer], "", None, ok=(0, 1, 128))
    return status == 0


def fetch_ref(repo_dir: Path, url: str, ref: str, token: str | None, into: str) -> str:
    """Fetch `ref` (a branch name or refs/pull/N/head) from url into the local ref `into`, with
    the same credential handling as a push; returns the fetched commit."""
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", ref) or ref.startswith("-") or not into.startswith("refs/"):
        raise IntegrateError(f"refusing an unusual ref: {ref!r} -> {into!r}")
    source = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
    _git(repo_dir, ["fetch", "--no-tags", "--no-recurse-submodules", url, f"+{source}:{into}"], url, token)
    _, out, _ = _git(repo_dir, ["rev-parse", "--verify", f"{into}^{{commit}}"], "", None)
    return out.strip()


def checkout(repo_dir: Path, branch: str) -> None:
    """Check out a local branch (of a repository this tool created: no hooks, no filters)."""
    _git(repo_dir, ["checkout", "--quiet", branch], "", None)


def push_branch(repo_dir: Path, url: str, branch: str, token: str | None, replaceable: set[str] | frozenset[str] = frozenset()) -> PushResult:
    """Make the fork's `branch` point at the local branch's commit (see the module doc)."""
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", branch) or branch.startswith("-"):
        raise IntegrateError(f"refusing to push an unusual branch name: {branch!r}")
    local = local_head(repo_dir, branch)
    before = remote_head(repo_dir, url, branch, token)
    if before == local:
        return PushResult(display_url(url), branch, local, before, forced=False, pushed=False)
    forced = False
    args = ["push", "--porcelain", "--no-verify"]
    if before is not None and not _is_ancestor(repo_dir, before, local):
        if before not in replaceable:
            raise IntegrateError(
                f"the fork's branch {branch} is at {before[:12]}, which this tool did not push and which the local "
                f"branch does not contain; refusing to overwrite it (merge it into {branch}, or delete the fork's branch)")
        args.append(f"--force-with-lease=refs/heads/{branch}:{before}")
        forced = True
    _git(repo_dir, [*args, url, f"refs/heads/{branch}:refs/heads/{branch}"], url, token)
    return PushResult(display_url(url), branch, local, before, forced=forced, pushed=True)
