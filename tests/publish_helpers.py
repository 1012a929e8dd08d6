"""Shared set-up for the publish tests: a small upstream repository, stand-in servers, App keys,
and a `git` wrapper that records the argv and environment of every git process."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def small_repo(root: Path, lines: int = 20) -> Path:
    """A checkout with one commit on main: model.py of `lines` lines."""
    repo = root / "checkout"
    repo.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "model.py").write_text("".join(f"x{i} = {i}\n" for i in range(1, lines + 1)))
    git("add", ".", cwd=repo)
    git("commit", "-qm", "upstream", cwd=repo)
    return repo


def commit_on_branch(repo: Path, branch: str, edits: dict[str, str], message: str = "port") -> str:
    current = git("rev-parse", "--abbrev-ref", "HEAD", cwd=repo)
    if current != branch:
        git("checkout", "-q", "-B", branch, cwd=repo)
    for name, text in edits.items():
        (repo / name).write_text(text)
    git("add", ".", cwd=repo)
    git("commit", "-qm", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


def rsa_key_pair() -> tuple[str, bytes]:
    """(private PEM text, public PEM bytes) for a stand-in GitHub App."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private.decode(), public


def git_recorder(folder: Path) -> tuple[Path, Path]:
    """A folder holding a `git` that appends its argv and environment (NUL-separated records)
    to a log, then runs the real git: put the folder first on PATH. Returns (folder, log)."""
    real = subprocess.run(["which", "git"], capture_output=True, text=True, check=True).stdout.strip()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "git-calls.log"
    wrapper = folder / "git"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"{{ printf 'ARGV'; for a in \"$@\"; do printf '\\037%s' \"$a\"; done; printf '\\n'; "
        f"env | sed 's/^/ENV\\x1f/'; printf 'END\\n'; }} >> '{log}'\n"
        f"exec '{real}' \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder, log


def recorded_git_calls(log: Path) -> list[dict]:
    """[{argv: [...], env: {...}}] from a git_recorder log."""
    calls, current = [], None
    if not log.exists():
        return calls
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("ARGV"):
            current = {"argv": line.split("\x1f")[1:], "env": {}}
        elif line.startswith("ENV\x1f") and current is not None:
            key, _, value = line[4:].partition("=")
            current["env"][key] = value
        elif line == "END" and current is not None:
            calls.append(current)
            current = None
    return calls


def files_containing(root: Path, needles: list[str]) -> list[str]:
    """Every file under root (links not followed) whose bytes contain any needle."""
    hits = []
    encoded = [n.encode() for n in needles if n]
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            if any(n in data for n in encoded):
                hits.append(str(path))
    return hits
