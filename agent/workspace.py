"""Where a run writes code: a git repo created in --out, or a worktree on a new branch of a
diffusers checkout (--target), so the user's own working tree is never touched."""

from __future__ import annotations

import shutil
from pathlib import Path

import git

from agent.errors import IntegrateError

MARKER = ".integrate-run"


def _actor(repo: git.Repo) -> git.Actor:
    reader = repo.config_reader()
    name = reader.get_value("user", "name", "") or "integrate"
    email = reader.get_value("user", "email", "") or "integrate@localhost"
    return git.Actor(name, email)


def check_target(target: Path) -> git.Repo:
    """A --target must be a clean git checkout of diffusers' source."""
    if not target.is_dir():
        raise IntegrateError(f"--target not found: {target}")
    try:
        repo = git.Repo(target)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise IntegrateError(f"--target is not a git checkout: {target}") from None
    if Path(repo.working_tree_dir).resolve() != target.resolve():
        raise IntegrateError(f"--target must be the root of the checkout: {repo.working_tree_dir}")
    if not (target / "src" / "diffusers" / "__init__.py").is_file():
        raise IntegrateError(f"--target has no src/diffusers/__init__.py: not a diffusers checkout: {target}")
    if not repo.head.is_valid():
        raise IntegrateError(f"--target has no commits yet: {target}")
    if repo.is_dirty(index=True, working_tree=True, untracked_files=False):
        raise IntegrateError(f"--target has uncommitted changes; commit or stash them first: {target}")
    return repo


def check_out_dir(out: Path, run_id: str | None = None) -> None:
    """--out must be new or empty, unless this very run created it."""
    if out.exists() and not out.is_dir():
        raise IntegrateError(f"--out exists and is not a folder: {out}")
    if out.is_dir() and any(out.iterdir()):
        marker = out / MARKER
        if run_id is None or not marker.is_file() or marker.read_text().strip() != run_id:
            raise IntegrateError(f"--out folder is not empty, refusing to overwrite it: {out}")


def create_standalone(out: Path, run_id: str) -> git.Repo:
    check_out_dir(out, run_id)
    if out.exists():
        shutil.rmtree(out)  # ours, from an interrupted attempt of this run
    out.mkdir(parents=True)
    (out / MARKER).write_text(run_id + "\n")
    (out / ".gitignore").write_text(f"{MARKER}\n__pycache__/\n# converted weights are published separately (Hub), not committed\nweights/\n")
    repo = git.Repo.init(out, initial_branch="main")
    return repo


def create_worktree(target: Path, path: Path, branch: str, owned: dict) -> git.Repo:
    """A worktree of `target` at `path` on a new `branch`. `owned` records what we created."""
    repo = check_target(target)
    if owned.get("worktree"):
        remove_worktree(target, owned)
    if branch in [h.name for h in repo.heads]:
        raise IntegrateError(f"branch {branch} already exists in {target}; delete it or pick another name")
    owned.update(worktree=str(path), branch=branch)
    repo.git.worktree("add", "-b", branch, str(path), "HEAD")
    return git.Repo(path)


def remove_worktree(target: Path, owned: dict) -> None:
    repo = git.Repo(target)
    if owned.get("worktree"):
        try:
            repo.git.worktree("remove", "--force", owned["worktree"])
        except git.GitCommandError:
            shutil.rmtree(owned["worktree"], ignore_errors=True)
            repo.git.worktree("prune")
    if owned.get("branch") and owned["branch"] in [h.name for h in repo.heads]:
        repo.git.branch("-D", owned["branch"])
    owned.clear()


def commit_all(repo: git.Repo, message: str) -> str | None:
    """Commit everything not ignored; returns the sha, or None when nothing changed."""
    repo.git.add(A=True)
    if repo.head.is_valid() and not repo.index.diff("HEAD"):
        return None
    actor = _actor(repo)
    commit = repo.index.commit(message, author=actor, committer=actor)
    return commit.hexsha
