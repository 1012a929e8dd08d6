"""diffusers' own repository checks, run on the branch a `--target` run made.

A PR to diffusers passes its CI only if `utils/check_dummies.py`, `check_copies.py`,
`check_support_list.py`, `check_forward_call_docstrings.py`, `check_doc_toc.py` and ruff pass
(`make quality`, the repo-consistency job), and `make repo-consistency` adds `check_inits.py` and
`check_repo.py`. Each script the checkout has is run as the Makefile runs it, from the root of a
copy of the branch (the checkout's code, so in the sandbox, and never in the branch itself);
ruff runs on the branch's changed Python files under the Makefile's `check_dirs`. A script the
checkout lacks is reported as not present, never as passed. A check that fails is run again on
the commit the branch started from: failing there too, it is reported as not caused by the
branch and does not block publishing.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sandbox
from agent.gitsafe import Git
from agent.run_state import Run

CHECK_DIRS = ("examples", "scripts", "src", "tests", "utils", "benchmarks")  # diffusers' Makefile
TAIL = 3000
LIMITS = sandbox.Limits(wall_s=600, output_bytes=200_000)
NOT_PRESENT = "not present in this checkout"
PRE_EXISTING = "failed on the base commit too (not caused by this branch)"


@dataclass(frozen=True)
class Branch:
    """What the checks need to know about the branch: its copy, the base copy (made on demand),
    and the files it changed relative to the base ({path: "added" | "modified" | "removed"})."""

    tree: Path
    base_tree: Callable[[], Path]
    changed: dict[str, str]
    check_dirs: tuple[str, ...]


@dataclass(frozen=True)
class RepoCheck:
    name: str
    needs: str  # the script path in the checkout, or "ruff" / "doc-builder"
    argv: Callable[[Branch], list[str] | None]  # None: nothing to check
    where: str  # where diffusers runs it
    compare_with_base: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _script(path: str, *args: str) -> Callable[[Branch], list[str]]:
    return lambda branch: [sys.executable, path, *args]


def _changed_python(branch: Branch) -> list[str]:
    return sorted(
        p for p, status in branch.changed.items()
        if status != "removed" and (p.endswith(".py") and p.split("/", 1)[0] in branch.check_dirs or p == "setup.py")
    )


def _tool(name: str) -> str:
    """A console script of this environment (the sandbox sees the interpreter's folders only)."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else (shutil.which(name) or str(beside))


def _ruff_exe() -> str:
    return _tool("ruff")


def _doc_builder_exe() -> str:
    return _tool("doc-builder")


def _ruff(*args: str) -> Callable[[Branch], list[str] | None]:
    def argv(branch: Branch) -> list[str] | None:
        files = _changed_python(branch)
        return [_ruff_exe(), *args, "--no-cache", "--force-exclude", *files] if files else None
    return argv


def _doc_builder(branch: Branch) -> list[str] | None:
    files = [p for p in branch.changed if branch.changed[p] != "removed" and p.endswith((".py", ".md", ".mdx"))
             and (p.startswith("src/diffusers/") or p.startswith("docs/source/"))]
    if not files:
        return None
    return [_doc_builder_exe(), "style", *files, "--max_len", "119", "--check_only"]


PR_FILES = "integrate_pr_files.json"


def _test_missing(branch: Branch) -> list[str]:
    """utils/check_test_missing.py reads the PR's files as JSON on stdin (GitHub's list)."""
    files = [{"filename": p, "status": status} for p, status in sorted(branch.changed.items())]
    (branch.tree / PR_FILES).write_text(json.dumps(files))
    feed = (f"import runpy, sys; sys.stdin = open({PR_FILES!r}); sys.argv = ['utils/check_test_missing.py']; "
            "runpy.run_path('utils/check_test_missing.py', run_name='__main__')")
    return [sys.executable, "-c", feed]


CHECKS: tuple[RepoCheck, ...] = (
    RepoCheck("check_dummies", "utils/check_dummies.py", _script("utils/check_dummies.py"), "CI: repository consistency"),
    RepoCheck("check_copies", "utils/check_copies.py", _script("utils/check_copies.py"), "CI: repository consistency"),
    RepoCheck("check_support_list", "utils/check_support_list.py", _script("utils/check_support_list.py"), "CI: repository consistency"),
    RepoCheck("check_forward_call_docstrings", "utils/check_forward_call_docstrings.py",
              _script("utils/check_forward_call_docstrings.py"), "CI: repository consistency"),
    RepoCheck("check_doc_toc", "utils/check_doc_toc.py", _script("utils/check_doc_toc.py"), "CI: make quality"),
    RepoCheck("check_inits", "utils/check_inits.py", _script("utils/check_inits.py"), "make repo-consistency"),
    RepoCheck("check_repo", "utils/check_repo.py", _script("utils/check_repo.py"), "make repo-consistency"),
    RepoCheck("check_test_missing", "utils/check_test_missing.py", _test_missing, "CI: PR labeler (missing-tests)",
              compare_with_base=False),
    RepoCheck("ruff check", "ruff", _ruff("check"), "CI: make quality (on the changed files)", compare_with_base=False),
    RepoCheck("ruff format --check", "ruff", _ruff("format", "--check"), "CI: make quality (on the changed files)",
              compare_with_base=False),
    RepoCheck("doc-builder style", "doc-builder", _doc_builder, "CI: make quality (on the changed files)",
              compare_with_base=False),
)


def _present(check: RepoCheck, tree: Path) -> str | None:
    """None when the check can run here, else why not."""
    if check.needs == "ruff":
        return None if Path(_ruff_exe()).exists() else "ruff is not installed"
    if check.needs == "doc-builder":
        return None if Path(_doc_builder_exe()).exists() else "doc-builder (hf-doc-builder) is not installed"
    return None if (tree / check.needs).is_file() else NOT_PRESENT


def _run_in(tree: Path, argv: list[str]) -> sandbox.SandboxResult:
    # PYTHONPATH=src as the Makefile exports it; scripts may import their siblings (no safe path)
    env = {"PYTHONPATH": str(tree / "src"), "PYTHONSAFEPATH": "", "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1"}
    return sandbox.run(argv, tree, env=env, limits=LIMITS)


def _tail(res: sandbox.SandboxResult) -> str:
    return (res.stdout + res.stderr)[-TAIL:]


def _run_check(check: RepoCheck, branch: Branch) -> dict[str, Any]:
    row: dict[str, Any] = {"name": check.name, "needs": check.needs, "where": check.where}
    missing = _present(check, branch.tree)
    if missing:
        return {**row, "ran": False, "passed": None, "status": missing, "output_tail": ""}
    argv = check.argv(branch)
    if argv is None:
        return {**row, "ran": False, "passed": None, "status": "nothing to check (no changed files it covers)", "output_tail": ""}
    res = _run_in(branch.tree, argv)
    row.update(command=" ".join(Path(a).name if a == sys.executable else a for a in argv[:8]), wall_s=res.wall_s,
               output_tail=_tail(res))
    if res.reason != "exit":
        return {**row, "ran": False, "passed": None, "status": f"could not run: {res.detail or res.reason}"}
    if res.returncode == 0:
        return {**row, "ran": True, "passed": True, "status": "passed"}
    row.update(ran=True, passed=False, status="failed")
    if check.compare_with_base:
        base = branch.base_tree()
        if not _present(check, base):
            base_res = _run_in(base, argv)
            row["base"] = {"returncode": base_res.returncode, "reason": base_res.reason, "output_tail": _tail(base_res)}
            if base_res.reason == "exit" and base_res.returncode != 0:
                row["status"] = PRE_EXISTING
    return row


def _copy_branch(workspace: Path, dest: Path) -> None:
    """The branch's files as they are now (committed or not, ignored files left out)."""
    repo = Git.for_workspace(workspace)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for rel in repo.run("ls-files", "-co", "--exclude-standard", "-z").split("\0"):
        src = workspace / rel
        if rel and src.is_file() and not src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / rel)


def _extract_commit(workspace: Path, commit: str, dest: Path) -> None:
    repo = Git.for_workspace(workspace)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    archive = dest.parent / f"{dest.name}.tar"
    repo.run("archive", "--format=tar", f"--output={archive}", commit)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    archive.unlink()


def changed_files(workspace: Path, base: str) -> dict[str, str]:
    """{path: added | modified | removed} of the working tree against `base`, untracked included."""
    repo = Git.for_workspace(workspace)
    kinds = {"A": "added", "D": "removed"}
    changed: dict[str, str] = {}
    for line in repo.run("diff", "--no-ext-diff", "--no-textconv", "--name-status", "--no-renames", base).splitlines():
        status, _, path = line.partition("\t")
        changed[path] = kinds.get(status[:1], "modified")
    for path in repo.run("ls-files", "--others", "--exclude-standard").splitlines():
        changed[path] = "added"
    return changed


def check_dirs(tree: Path) -> tuple[str, ...]:
    """The Makefile's `check_dirs`, where diffusers runs ruff (its default when not found)."""
    makefile = tree / "Makefile"
    if makefile.is_file():
        found = re.search(r"^check_dirs\s*:=\s*(.+)$", makefile.read_text(errors="replace"), re.M)
        if found:
            return tuple(found.group(1).split())
    return CHECK_DIRS


def run_repo_checks(run: Run) -> dict[str, Any]:
    """Run every known check on the run's branch (the worktree must still exist, i.e. before
    publish removes it). Returns {"checks": [...], "blocking": [...], "passed", "complete"}:
    per check `ran`, `passed` (None when it did not run), `status` and `output_tail`;
    `blocking` names the checks that failed because of the branch; `passed` is true when none
    did; `complete` is true only when every check was present and ran."""
    scaffolded = run.result("scaffold")
    workspace = Path(scaffolded["workspace"])
    base = Git.for_workspace(workspace).run("rev-parse", f"{scaffolded['commit']}~1").strip()
    root = run.path("repo_checks")
    tree, base_dir = root / "branch", root / "base"
    _copy_branch(workspace, tree)
    made: list[Path] = []

    def base_tree() -> Path:
        if not made:
            _extract_commit(workspace, base, base_dir)
            made.append(base_dir)
        return base_dir

    branch = Branch(tree=tree, base_tree=base_tree, changed=changed_files(workspace, base), check_dirs=check_dirs(tree))
    rows = [_run_check(check, branch) for check in CHECKS]
    blocking = [r["name"] for r in rows if r["status"] == "failed"]
    result = {
        "base": base,
        "checks": rows,
        "blocking": blocking,
        "passed": not blocking,
        "complete": all(r["ran"] for r in rows),
        "changed": branch.changed,
    }
    run.write_json("repo_checks/summary.json", result)
    return result


def markdown_table(result: dict[str, Any]) -> str:
    """The checks as a PR body table: check, where diffusers runs it, outcome."""
    lines = ["| check | run by diffusers in | outcome |", "|---|---|---|"]
    for r in result["checks"]:
        lines.append(f"| `{r['name']}` | {r['where']} | {r['status']} |")
    return "\n".join(lines)
