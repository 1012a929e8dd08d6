"""Which GitHub events start a job, cancel one, or are refused: one rule set for the webhook
server and the Actions deployment, so both answer the same event the same way.

- `issues` / `labeled` with the trigger label (default `integrate`): a job for the Hub id the
  issue names (a huggingface.co URL, else the first `org/name` in backticks). Only people with
  triage access can label, so GitHub has already authorized the sender.
- `issue_comment` / `created` whose first line starts with `/integrate`: `/integrate <hf-repo>
  [--revision REV] [--device cpu|cuda] [--llm none|auto] [--compile-check]`, `/integrate`
  alone (the issue's Hub id) or `/integrate cancel`. The commenter's `author_association` must
  be OWNER, MEMBER or COLLABORATOR; anybody else is refused with one polite comment.
- Comments on pull requests, edits, bots' own comments and every other event are ignored.

Everything here is pure: a payload in, a decision out. The text of issues and comments is
untrusted; nothing of it reaches a shell, and what reaches `integrate`'s argv is checked here.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

TRIGGER_LABEL = "integrate"
COMMAND = "/integrate"
ALLOWED_ASSOCIATIONS = ("OWNER", "MEMBER", "COLLABORATOR")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")
REVISION = re.compile(r"[\w][\w./-]{0,199}")
HUB_URL = re.compile(r"https?://(?:www\.)?huggingface\.co/(?!datasets/|spaces/|docs/|papers/)(" + HUB_ID.pattern + r")")
BACKTICKED = re.compile(r"`(" + HUB_ID.pattern + r")`")
USAGE = ("`/integrate <org/model> [--revision REV] [--device cpu|cuda] [--llm none|auto] [--compile-check]`, "
         "`/integrate` (the model this issue names) or `/integrate cancel`")


@dataclass(frozen=True)
class Request:
    """Run integrate on `source` for issue `repo`#`issue`."""

    repo: str
    issue: int
    source: str
    revision: str
    options: tuple[str, ...]  # extra integrate arguments, already checked against the allow-list
    requester: str
    installation_id: int | None


@dataclass(frozen=True)
class Cancel:
    repo: str
    issue: int
    requester: str
    installation_id: int | None


@dataclass(frozen=True)
class Reply:
    """No job: the bot answers once on the issue (refused, or a command it cannot read)."""

    repo: str
    issue: int
    user: str
    kind: str  # "refused" | "invalid"
    reason: str
    installation_id: int | None


@dataclass(frozen=True)
class Ignored:
    reason: str


Decision = Request | Cancel | Reply | Ignored


def hub_id_in_text(text: str) -> str | None:
    """The model an issue names: a huggingface.co URL first, else the first `org/name` in backticks."""
    for pattern in (HUB_URL, BACKTICKED):
        m = pattern.search(text or "")
        if m:
            return m[1].removesuffix(".git")
    return None


def valid_hub_id(value: str) -> bool:
    return bool(HUB_ID.fullmatch(value)) and ".." not in value and "--" not in value


def valid_revision(value: str) -> bool:
    return bool(REVISION.fullmatch(value)) and ".." not in value and not value.endswith((".lock", "/"))


class CommandError(ValueError):
    """A /integrate command that cannot be read; the message is shown to its author."""


def parse_command(line: str, issue_text: str) -> tuple[str, str, tuple[str, ...]] | str:
    """`/integrate ...` -> (source, revision, options), or "cancel". Raises CommandError."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise CommandError(f"cannot read the command ({exc})") from None
    if not words or words[0] != COMMAND:
        raise CommandError(f"a command starts with {COMMAND}")
    args = words[1:]
    if args == ["cancel"]:
        return "cancel"
    source = None
    if args and not args[0].startswith("-"):
        source = args.pop(0)
        source = HUB_URL.fullmatch(source)[1] if HUB_URL.fullmatch(source) else source
        if not valid_hub_id(source):
            raise CommandError(f"{source!r} is not a Hub model id like org/name")
    else:
        source = hub_id_in_text(issue_text)
        if source is None:
            raise CommandError("this issue names no model (a huggingface.co link or `org/name`); name it in the command")
    revision, options = "main", []
    while args:
        opt = args.pop(0)
        if opt in ("--revision", "--device", "--llm"):
            if not args:
                raise CommandError(f"{opt} needs a value")
            value = args.pop(0)
            if opt == "--revision":
                if not valid_revision(value):
                    raise CommandError(f"--revision {value!r} is not a branch, tag or commit")
                revision = value
            elif opt == "--device" and value not in ("cpu", "cuda"):
                raise CommandError("--device is cpu or cuda")
            elif opt == "--llm" and value not in ("none", "auto"):
                raise CommandError("--llm is none or auto")
            else:
                options += [opt, value]
        elif opt == "--compile-check":
            options.append(opt)
        else:
            raise CommandError(f"unknown option {opt!r}")
    return source, revision, tuple(options)


def _installation(payload: dict[str, Any]) -> int | None:
    inst = payload.get("installation") or {}
    return int(inst["id"]) if isinstance(inst.get("id"), int) else None


def decide(event: str, payload: dict[str, Any], label: str = TRIGGER_LABEL) -> Decision:
    """What the bot does with one GitHub event (the X-GitHub-Event name and its JSON payload)."""
    if not isinstance(payload, dict):
        return Ignored("payload is not an object")
    repo = (payload.get("repository") or {}).get("full_name")
    issue = payload.get("issue") or {}
    sender = payload.get("sender") or {}
    if not repo or not isinstance(issue.get("number"), int):
        return Ignored(f"{event or 'unnamed'} event without a repository and issue")
    if sender.get("type") == "Bot":
        return Ignored("sent by a bot")
    number = issue["number"]
    installation = _installation(payload)
    issue_text = f"{issue.get('title') or ''}\n{issue.get('body') or ''}"
    if event == "issues":
        if payload.get("action") != "labeled" or (payload.get("label") or {}).get("name") != label:
            return Ignored(f"issues/{payload.get('action')} without the {label!r} label")
        user = sender.get("login") or "someone"
        source = hub_id_in_text(issue_text)
        if source is None or not valid_hub_id(source):
            return Reply(repo, number, user, "invalid", "this issue names no model (a huggingface.co link or "
                         f"`org/name` in backticks); comment {USAGE}", installation)
        return Request(repo, number, source, "main", (), user, installation)
    if event == "issue_comment":
        comment = payload.get("comment") or {}
        if payload.get("action") != "created":
            return Ignored(f"issue_comment/{payload.get('action')}")
        if issue.get("pull_request") is not None:
            return Ignored("a comment on a pull request")
        body = (comment.get("body") or "").strip()
        first = body.splitlines()[0].strip() if body else ""
        if first != COMMAND and not first.startswith(COMMAND + " "):
            return Ignored("not a /integrate command")
        user = (comment.get("user") or {}).get("login") or sender.get("login") or "someone"
        if comment.get("author_association") not in ALLOWED_ASSOCIATIONS:
            return Reply(repo, number, user, "refused", "only the repository's owners, members and collaborators "
                         "can start integrate runs", installation)
        try:
            parsed = parse_command(first, issue_text)
        except CommandError as exc:
            return Reply(repo, number, user, "invalid", f"{exc}; use {USAGE}", installation)
        if parsed == "cancel":
            return Cancel(repo, number, user, installation)
        source, revision, options = parsed
        return Request(repo, number, source, revision, options, user, installation)
    return Ignored(f"{event or 'unnamed'} events do not trigger the bot")
