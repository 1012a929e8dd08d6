"""Every git command the tool runs goes through here, hardened against the tree it works on.

The work tree is written by an untrusted model (the refine stage), so git must not take
orders from anything in it, nor from anything the model could have reached:

- No discovery: each command gets GIT_DIR and GIT_WORK_TREE explicitly. The git dir lies
  outside the work tree (`--out` repos are created with a separate git dir, worktrees keep
  theirs in the checkout), and the tree's `.git` pointer is read once, checked, and pinned.
- No user or system config (GIT_CONFIG_NOSYSTEM, GIT_CONFIG_GLOBAL=/dev/null); command-line
  config (GIT_CONFIG_COUNT, which outranks every file) turns off hooks (core.hooksPath is
  /dev/null), fsmonitor, the global attributes and excludes files, transports, gc and
  maintenance, signing; every filter driver the repository's own config defines is blanked.
  Diffs are made with --no-ext-diff and --no-textconv. Aliases never apply: builtins win.
- A minimal environment: PATH, a C locale, the identity, the git variables above. Nothing
  else from the caller's environment (API keys, tokens, GIT_SSH_COMMAND...) reaches git or
  anything git might start.

GitPython is not used for these calls because it copies the whole environment into every git
process and runs commit hooks itself from the git dir.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from agent.errors import IntegrateError

GIT_TIMEOUT_S = 300.0
POINTER_MAX_BYTES = 4096
DEFAULT_IDENTITY = ("integrate", "integrate@localhost")

# Settings that make git start a program or read a file outside the repository, overridden on
# every command (command-line scope outranks every config file).
HARDENED_CONFIG: dict[str, str] = {
    "core.hooksPath": os.devnull,  # no hook is ever found
    "core.fsmonitor": "false",
    "core.attributesFile": os.devnull,
    "core.excludesFile": os.devnull,
    "core.pager": "cat",
    "core.askPass": "",
    "credential.helper": "",
    "protocol.allow": "never",
    "submodule.recurse": "false",
    "diff.external": "",
    "diff.ignoreSubmodules": "all",
    "status.submoduleSummary": "false",
    "commit.gpgSign": "false",
    "tag.gpgSign": "false",
    "log.showSignature": "false",
    "gc.auto": "0",
    "maintenance.auto": "false",
}
FILTER_KEYS = r"^filter\..+\.(clean|smudge|process)$"


class GitError(IntegrateError):
    """A git command failed; the message names the command and git's last line."""


def _base_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C",
        "LANGUAGE": "C",
        "HOME": os.devnull,
        "XDG_CONFIG_HOME": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_OPTIONAL_LOCKS": "0",
    }


def _config_env(settings: dict[str, str]) -> dict[str, str]:
    env = {"GIT_CONFIG_COUNT": str(len(settings))}
    for n, (key, value) in enumerate(settings.items()):
        env[f"GIT_CONFIG_KEY_{n}"] = key
        env[f"GIT_CONFIG_VALUE_{n}"] = value
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path, input: str | None = None, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, input=input, capture_output=True, text=True,
                              errors="replace", timeout=GIT_TIMEOUT_S, stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise GitError("git is not installed (needed for the workspace's history)") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} did not finish in {GIT_TIMEOUT_S:g} s") from None
    if proc.returncode not in ok:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise GitError(f"git {args[0]} failed: {last}")
    return proc


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def read_pointer(work_tree: Path) -> Path:
    """The git dir a work tree's `.git` file names, checked: a regular file (not a link), a
    `gitdir:` line, a directory outside the work tree that looks like a git dir."""
    pointer = work_tree / ".git"
    try:
        fd = os.open(pointer, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise GitError(f"{pointer}: not a git pointer file ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise GitError(f"{pointer}: expected a `gitdir:` file, found a folder or special file")
        text = os.read(fd, POINTER_MAX_BYTES + 1).decode("utf-8", "replace")
    finally:
        os.close(fd)
    if len(text) > POINTER_MAX_BYTES or not text.startswith("gitdir: ") or text.count("\n") > 1:
        raise GitError(f"{pointer}: not a `gitdir:` pointer")
    git_dir = (work_tree / text.removeprefix("gitdir: ").strip()).resolve()
    if _inside(git_dir, work_tree.resolve()):
        raise GitError(f"{pointer}: points inside the work tree ({git_dir}); refusing to use it")
    if not (git_dir / "HEAD").is_file():
        raise GitError(f"{pointer}: {git_dir} is not a git directory")
    return git_dir


class Git:
    """One repository: an explicit git dir and work tree, every command hardened."""

    def __init__(self, git_dir: Path, work_tree: Path | None):
        self.git_dir = Path(git_dir).resolve()
        self.work_tree = Path(work_tree).resolve() if work_tree else None

    @classmethod
    def for_workspace(cls, work_tree: Path, in_tree_ok: bool = False) -> Git:
        """The repository of a run's workspace, from its pinned `.git` pointer. `in_tree_ok`
        accepts a `.git` folder: only for a standalone repo after the model's session is over."""
        work_tree = Path(work_tree).resolve()
        if in_tree_ok and (work_tree / ".git").is_dir() and not (work_tree / ".git").is_symlink():
            return cls(work_tree / ".git", work_tree)
        return cls(read_pointer(work_tree), work_tree)

    @classmethod
    def for_checkout(cls, root: Path) -> Git:
        """A user's own checkout (--target): its git dir is found once, from its root."""
        root = Path(root).resolve()
        env = {**_base_env(), **_config_env(HARDENED_CONFIG)}
        out = _run(["rev-parse", "--absolute-git-dir"], env, root).stdout.strip()
        return cls(Path(out), root)

    # running ---------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {**_base_env(), "GIT_DIR": str(self.git_dir)}
        if self.work_tree:
            env["GIT_WORK_TREE"] = str(self.work_tree)
        return env

    def _filters(self, env: dict[str, str]) -> dict[str, str]:
        """Blank every filter driver the repository's config defines (no attribute can start one)."""
        proc = _run(["config", "-z", "--get-regexp", FILTER_KEYS], env, self._cwd(), ok=(0, 1))
        drivers = {record.split("\n", 1)[0].rsplit(".", 1)[0] for record in proc.stdout.split("\0") if record}
        settings = {}
        for driver in sorted(drivers):
            settings.update({f"{driver}.clean": "", f"{driver}.smudge": "", f"{driver}.process": "", f"{driver}.required": "false"})
        return settings

    def _cwd(self) -> Path:
        return self.work_tree or self.git_dir

    def run(self, *args: str, input: str | None = None, ok: tuple[int, ...] = (0,), extra_env: dict[str, str] | None = None) -> str:
        env = {**self.env(), **_config_env(HARDENED_CONFIG)}
        env.update(_config_env({**HARDENED_CONFIG, **self._filters(env)}))
        env.update(extra_env or {})
        return _run(list(args), env, self._cwd(), input=input, ok=ok).stdout

    # what the stages need --------------------------------------------------------------------
    def head(self) -> str | None:
        out = self.run("rev-parse", "--verify", "-q", "HEAD^{commit}", ok=(0, 1)).strip()
        return out or None

    def branch(self) -> str:
        return self.run("symbolic-ref", "--short", "HEAD").strip()

    def branches(self) -> list[str]:
        return self.run("for-each-ref", "--format=%(refname:short)", "refs/heads/").split()

    def dirty(self, untracked: bool = True) -> bool:
        return bool(self.run("status", "--porcelain", "--ignore-submodules=all",
                             f"--untracked-files={'all' if untracked else 'no'}").strip())

    def identity(self) -> tuple[str, str]:
        """user.name and user.email as the user configured them (their own config files, read by
        `git config`, which starts nothing), else integrate's own."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "GIT_DIR": str(self.git_dir)}
        env.update({k: os.environ[k] for k in ("HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL") if k in os.environ})
        values = []
        for key, default in zip(("user.name", "user.email"), DEFAULT_IDENTITY, strict=True):
            proc = _run(["config", "--get", key], env, self.git_dir, ok=(0, 1))
            values.append(proc.stdout.strip() or default)
        return values[0], values[1]

    def commit_all(self, message: str) -> str | None:
        """Commit everything not ignored; the sha, or None when nothing changed."""
        self.run("add", "-A")
        if self.head() and not self.run("diff", "--cached", "--name-only", "--no-ext-diff").strip():
            return None
        name, email = self.identity()
        who = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
        self.run("commit", "-q", "--no-verify", "--no-edit", "--cleanup=verbatim", "-F", "-", input=message, extra_env=who)
        return self.head()

    def reset_to(self, sha: str) -> None:
        """Back to `sha`: tracked edits undone, untracked files and folders removed."""
        self.run("reset", "-q", "--hard", sha)
        self.run("clean", "-q", "-f", "-d")

    def format_patch(self, revisions: str) -> str:
        return self.run("format-patch", "--stdout", "--no-ext-diff", "--no-textconv", revisions)


def init_separate(work_tree: Path, git_dir: Path, branch: str = "main") -> Git:
    """A new repository whose git dir lives outside its work tree (`work_tree/.git` is a pointer)."""
    env = {**_base_env(), **_config_env(HARDENED_CONFIG)}
    _run(["init", "-q", f"--initial-branch={branch}", "--template=", f"--separate-git-dir={git_dir}", str(work_tree)], env, work_tree)
    return Git(git_dir, work_tree)


def seal(work_tree: Path, git_dir: Path) -> None:
    """Move a separate git dir into the work tree as `.git`, once the model's session is over, so
    the folder is an ordinary self-contained repository."""
    pointer = work_tree / ".git"
    if pointer.is_dir() and not pointer.is_symlink():
        return  # already sealed
    if read_pointer(work_tree) != Path(git_dir).resolve():
        raise GitError(f"{pointer} does not point at {git_dir}")
    pointer.unlink()
    shutil.move(str(git_dir), str(pointer))
