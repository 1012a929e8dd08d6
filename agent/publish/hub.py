"""The Hub client: the converted diffusers weights as a pull request on a model repository.

`HubClient.publish_weights` uploads the run's converted folder (config.json and safetensors
shards, nothing else) with huggingface_hub's `create_commit(..., create_pr=True)`:

- into `diffusers/` of the source repository (users load it with
  `from_pretrained(repo, subfolder="diffusers", revision="refs/pr/N")`), or
- at the root of another repository (`--hub-repo owner/name`), created when missing.

A re-run finds the tool's open pull request on that repository (same title, same author) and
commits onto its `refs/pr/N` instead of opening another; unchanged files are not re-uploaded
(huggingface_hub compares the Hub's oid with the local one). The token is huggingface_hub's own
(HF_TOKEN, or the one `hf auth login` saved); it is never written anywhere by this module.

Rate limits (429, 503 with Retry-After) are retried on the shared `RetryPolicy`; huggingface_hub
retries its own upload calls too. 401 and 403 become one line that says what to fix.
"""

from __future__ import annotations

import fnmatch
import hashlib
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from agent.errors import IntegrateError
from agent.publish.retry import GaveUp, RetryPolicy, call_with_retry, retry_after_seconds
from agent.redact import redact_text

SUBFOLDER = "diffusers"
WEIGHT_PATTERNS = ("config.json", "*.safetensors", "*.safetensors.index.json")
T = TypeVar("T")


@dataclass(frozen=True)
class HubFile:
    name: str
    size: int
    sha256: str


@dataclass
class HubResult:
    repo_id: str
    subfolder: str
    pr_url: str
    pr_num: int
    commit: str
    files: list[HubFile]
    created_repo: bool = False
    updated_pr: bool = False
    notes: list[str] = field(default_factory=list)

    def load_snippet(self) -> str:
        sub = f', subfolder="{self.subfolder}"' if self.subfolder else ""
        return f'from_pretrained("{self.repo_id}"{sub}, revision="refs/pr/{self.pr_num}")'


def weight_files(folder: Path) -> list[Path]:
    """The files of a converted folder that belong on the Hub: regular files (no links) named
    like diffusers' weights and config; anything else in the folder is left out."""
    if not folder.is_dir():
        raise IntegrateError(f"--publish hub: converted weights folder not found: {folder}")
    chosen = []
    for p in sorted(folder.iterdir()):
        mode = p.lstat().st_mode
        if stat.S_ISREG(mode) and any(fnmatch.fnmatchcase(p.name, pat) for pat in WEIGHT_PATTERNS):
            chosen.append(p)
    if not any(p.name.endswith(".safetensors") for p in chosen) or not any(p.name == "config.json" for p in chosen):
        raise IntegrateError(f"--publish hub: {folder} lacks config.json or safetensors weights")
    return chosen


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _retryable(exc: Exception) -> float | bool:
    if isinstance(exc, HfHubHTTPError) and _status(exc) in (429, 503):
        return retry_after_seconds(dict(exc.response.headers)) or True
    return False


class HubClient:
    """One Hub endpoint and token (None: huggingface_hub's own lookup, HF_TOKEN first)."""

    def __init__(self, token: str | None = None, endpoint: str | None = None, policy: RetryPolicy | None = None,
                 plan: Callable[[str, str, str], None] | None = None) -> None:
        self.api = HfApi(endpoint=endpoint, token=token)
        self.endpoint = self.api.endpoint.rstrip("/")
        self.policy = policy or RetryPolicy()
        self._plan = plan  # dry run: record (method, path, what) instead of calling the Hub

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return call_with_retry(fn, self.policy, _retryable)
        except GaveUp as exc:
            raise IntegrateError(f"Hub: could not {what}: rate limited, {exc}; try again later") from None
        except RepositoryNotFoundError:
            raise IntegrateError(f"Hub: could not {what}: repository not found (or not visible to this token)") from None
        except HfHubHTTPError as exc:
            status = _status(exc)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else f"HTTP {status}"
            if status == 401:
                hint = "the token was refused: set HF_TOKEN to a valid token (or run `hf auth login`)"
            elif status == 403:
                hint = "permission denied: the token needs write access (a fine-grained token: 'write' on this repository)"
            else:
                hint = f"HTTP {status}"
            raise IntegrateError(redact_text(f"Hub: could not {what}: {hint} ({first})")) from None

    def whoami(self) -> str:
        if self._plan:
            self._plan("GET", "/api/whoami-v2", "")
            return "{you}"
        if not self.api.token and not _has_saved_token():
            raise IntegrateError("--publish hub: no Hugging Face token: set HF_TOKEN (a token with write access)")
        return self._call("read the token's user (whoami)", lambda: self.api.whoami(cache=True))["name"]

    def ensure_repo(self, repo_id: str, create: bool) -> bool:
        """True when the repository had to be created (only with `create`)."""
        if self._plan:
            self._plan("GET", f"/api/models/{repo_id}", "")
            if create:
                self._plan("POST", "/api/repos/create", "{name, organization, type} if it does not exist")
            return False
        if self._call(f"look up {repo_id}", lambda: self.api.repo_exists(repo_id)):
            return False
        if not create:
            raise IntegrateError(f"Hub: {repo_id} not found (or not visible to this token); pass --hub-repo OWNER/NAME to publish elsewhere")
        self._call(f"create the repository {repo_id}", lambda: self.api.create_repo(repo_id, exist_ok=True))
        return True

    def find_open_pr(self, repo_id: str, title: str, author: str) -> int | None:
        if self._plan:
            self._plan("GET", f"/api/models/{repo_id}/discussions?type=pull_request&status=open&author={author}", "")
            return None

        def find() -> int | None:
            for d in self.api.get_repo_discussions(repo_id, author=author, discussion_type="pull_request", discussion_status="open"):
                if d.title == title:
                    return d.num
            return None

        return self._call(f"list the pull requests of {repo_id}", find)

    def publish_weights(self, repo_id: str, folder: Path, subfolder: str, title: str, description: str,
                        create_repo: bool = False) -> HubResult:
        """Upload the folder's weights as a Hub pull request (or onto the tool's open one)."""
        files = weight_files(folder)
        author = self.whoami()
        created = self.ensure_repo(repo_id, create_repo)
        existing = None if created else self.find_open_pr(repo_id, title, author)
        prefix = f"{subfolder.strip('/')}/" if subfolder else ""
        listed = [HubFile(f"{prefix}{p.name}", p.stat().st_size, _sha256(p)) for p in files]
        if self._plan:
            query = "?create_pr=1"
            self._plan("POST", f"/api/models/{repo_id}/preupload/main{query}", "{files}")
            self._plan("UPLOAD", f"{len(files)} files, {sum(f.size for f in listed):,} bytes",
                       "to Hub storage (Xet when hf_xet is installed, else Git LFS), as huggingface_hub decides")
            self._plan("POST", f"/api/models/{repo_id}/commit/main{query}",
                       "ndjson {header, file|lfsFile per file}; on a re-run: commit/refs%2Fpr%2FN without create_pr")
            return HubResult(repo_id, subfolder, f"{self.endpoint}/{repo_id}/discussions/{{number}}", 0, "", listed)
        ops = [CommitOperationAdd(path_in_repo=f"{prefix}{p.name}", path_or_fileobj=str(p)) for p in files]
        if existing is None:
            info = self._call(f"open a pull request on {repo_id}", lambda: self.api.create_commit(
                repo_id, ops, commit_message=title, commit_description=description, create_pr=True))
            num, url = info.pr_num, info.pr_url
        else:
            ops += self._stale_weights(repo_id, f"refs/pr/{existing}", prefix, {op.path_in_repo for op in ops})
            info = self._call(f"update pull request #{existing} on {repo_id}", lambda: self.api.create_commit(
                repo_id, ops, commit_message=title, commit_description=description, revision=f"refs/pr/{existing}"))
            num, url = existing, f"{self.endpoint}/{repo_id}/discussions/{existing}"
        return HubResult(repo_id, subfolder, url, int(num), info.oid, listed, created_repo=created, updated_pr=existing is not None)


    def _stale_weights(self, repo_id: str, revision: str, prefix: str, kept: set[str]) -> list[CommitOperationDelete]:
        """Weight files an earlier run put on the pull request that this run does not write
        (a re-run with fewer shards must not leave an old shard beside the new index)."""
        def listing() -> list[str]:
            entries = self.api.list_repo_tree(repo_id, path_in_repo=prefix.rstrip("/") or None, revision=revision)
            return [e.path for e in entries if getattr(e, "size", None) is not None]

        stale = []
        for path in self._call(f"list the files of pull request {revision} on {repo_id}", listing):
            name = path[len(prefix):] if path.startswith(prefix) else None
            if name and "/" not in name and path not in kept and name != "config.json" \
                    and any(fnmatch.fnmatchcase(name, pat) for pat in WEIGHT_PATTERNS):
                stale.append(CommitOperationDelete(path_in_repo=path))
        return stale


def _has_saved_token() -> bool:
    from huggingface_hub import get_token

    return bool(get_token())
