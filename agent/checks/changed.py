"""Which Python files changed against a git ref (for `integrate check --changed-only`)."""

from __future__ import annotations

from pathlib import Path

import git

from agent.errors import IntegrateError


def changed_python_files(paths: tuple[str, ...] | list[str], base_ref: str) -> list[str]:
    """Files under `paths` that differ from `base_ref` (committed since, staged, unstaged, untracked)."""
    selected = []
    for raw in paths:
        p = Path(raw).resolve()
        try:
            repo = git.Repo(p if p.is_dir() else p.parent, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise IntegrateError(f"--changed-only needs a git checkout: {raw}") from None
        top = Path(repo.working_tree_dir)
        try:
            names = set(repo.git.diff("--name-only", base_ref, "--", str(p)).splitlines())
        except git.GitCommandError:
            raise IntegrateError(f"unknown --base-ref {base_ref!r} in {top}") from None
        names |= set(repo.git.ls_files("--others", "--exclude-standard", "--", str(p)).splitlines())
        selected += [str(top / n) for n in sorted(names) if n.endswith(".py") and (top / n).is_file()]
    return selected
