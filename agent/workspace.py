"""Where a run writes code: a git repo created in --out, or a worktree on a new branch of a
diffusers checkout (--target), so the user's own working tree is never touched."""

from __future__ import annotations

import shutil
from pathlib import Path

from agent.errors import IntegrateError
from agent.gitsafe import Git, GitError, init_separate

MARKER = ".integrate-run"


def check_target(target: Path) -> Git:
    """A --target must be a clean git checkout of diffusers' source."""
    if not target.is_dir():
        raise IntegrateError(f"--target not found: {target}")
    try:
        repo = Git.for_checkout(target)
        top = Path(repo.run("rev-parse", "--show-toplevel").strip())
    except GitError:
        raise IntegrateError(f"--target is not a git checkout: {target}") from None
    if top.resolve() != target.resolve():
        raise IntegrateError(f"--target must be the root of the checkout: {top}")
    if not (target / "src" / "diffusers" / "__init__.py").is_file():
        raise IntegrateError(f"--target has no src/diffusers/__init__.py: not a diffusers checkout: {target}")
    if repo.head() is None:
        raise IntegrateError(f"--target has no commits yet: {target}")
    if repo.dirty(untracked=False):
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


def create_standalone(out: Path, run_id: str, git_dir: Path) -> Git:
    """A new repository in `out` whose git dir is `git_dir`, outside the folder the model edits
    (publish moves it into `out/.git` once the model's session is over)."""
    check_out_dir(out, run_id)
    if out.exists():
        shutil.rmtree(out)  # ours, from an interrupted attempt of this run
    if git_dir.exists():
        shutil.rmtree(git_dir)
    out.mkdir(parents=True)
    (out / MARKER).write_text(run_id + "\n")
    (out / ".gitignore").write_text(f"{MARKER}\n__pycache__/\n# converted weights are published separately (Hub), not committed\nweights/\n")
    return init_separate(out, git_dir)


def create_worktree(target: Path, path: Path, branch: str, owned: dict) -> Git:
    """A worktree of `target` at `path` on a new `branch`. `owned` records what we created."""
    repo = check_target(target)
    if owned.get("worktree"):
        remove_worktree(target, owned)
    if branch in repo.branches():
        raise IntegrateError(f"branch {branch} already exists in {target}; delete it or pick another name")
    owned.update(worktree=str(path), branch=branch)
    repo.run("worktree", "add", "-q", "-b", branch, str(path), "HEAD")
    return Git.for_workspace(path)


def remove_worktree(target: Path, owned: dict) -> None:
    repo = Git.for_checkout(target)
    if owned.get("worktree"):
        try:
            repo.run("worktree", "remove", "--force", owned["worktree"])
        except GitError:
            shutil.rmtree(owned["worktree"], ignore_errors=True)
            repo.run("worktree", "prune")
    if owned.get("branch") and owned["branch"] in repo.branches():
        repo.run("branch", "-D", owned["branch"])
    owned.clear()


def commit_all(repo: Git, message: str) -> str | None:
    """Commit everything not ignored; returns the sha, or None when nothing changed."""
    return repo.commit_all(message)
