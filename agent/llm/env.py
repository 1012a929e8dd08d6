"""What the refinement loop acts on: the port's workspace, its git history, the sandbox, parity
and the checks. The loop only sees tools and verdicts; this module owns how they are made.

run_python, run_parity and run_checks run untrusted code (the model's snippets, the edited
port), so the first two go through the sandbox; the checks only parse files.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

import sandbox
from agent.checks import check_paths
from agent.checks.formats import as_text
from agent.errors import IntegrateError
from agent.llm.tools import Tool, ToolError, Workspace, file_tools, object_schema
from agent.skills import Skill
from agent.workspace import commit_all

RUN_PYTHON_MAX_S = 300


@dataclass
class Verdict:
    passed: bool
    text: str  # what the model (and the run summary) is told


def describe_parity(report: dict[str, Any]) -> str:
    """A parity report in the few lines a model needs to act on it."""
    tol = report.get("tolerance", {})
    lines = [
        f"parity {'PASSED' if report['passed'] else 'FAILED'}: max abs {report['max_abs_diff']:.3g}, "
        f"cosine {report['cosine']:.8f} (tolerance: max abs {tol.get('max_abs')}, cosine {tol.get('cosine')}; {report.get('dtype')}, {report.get('device')})"
    ]
    lines += [f"problem: {p}" for p in report.get("problems", [])]
    fd = report.get("first_divergence")
    if fd:
        lines.append(f"first divergence: reference {fd.get('reference_module')} vs port {fd.get('candidate_module')} (max abs {fd.get('max_abs_diff', float('nan')):.3g})")
    mapping = report.get("mapping") or {}
    for side in ("reference", "candidate"):
        names = mapping.get(f"unmatched_{side}_names") or []
        if names:
            lines.append(f"weights of the {'reference' if side == 'reference' else 'port'} no weight of the other side maps to: {', '.join(names[:8])}")
    lines += [f"weight mapping could not decide: {u}" for u in mapping.get("unresolved") or []]
    worst = sorted((layer for layer in report.get("layers", []) if layer.get("diverged")), key=lambda layer: -layer["max_abs_diff"])[:5]
    lines += [f"diverged layer: {layer['reference_module']} -> {layer['candidate_module']} max abs {layer['max_abs_diff']:.3g}" for layer in worst]
    return "\n".join(lines)


class RefineEnv:
    def __init__(
        self,
        workspace: Path,
        *,
        skills: dict[str, Skill],
        parity: Callable[[], dict[str, Any]],
        check_files: list[Path],
        scratch: Path,
        ro_paths: list[Path],
        python_path: Path,
    ):
        self.ws = Workspace(workspace)
        self.repo = git.Repo(workspace)
        self.skills = skills
        self._parity = parity
        self.check_files = check_files
        self.scratch = scratch
        self.ro_paths = ro_paths
        self.python_path = python_path
        self.on_checkpoint: Callable[[str, str], None] = lambda sha, message: None
        scratch.mkdir(parents=True, exist_ok=True)

    # git --------------------------------------------------------------------------------------
    def head(self) -> str:
        return self.repo.head.commit.hexsha

    def dirty(self) -> bool:
        return self.repo.is_dirty(untracked_files=True)

    def checkpoint(self, message: str) -> str | None:
        """Commit the workspace as a green checkpoint; None when nothing changed."""
        sha = commit_all(self.repo, message)
        if sha:
            self.on_checkpoint(sha, message)
        return sha

    def revert(self, sha: str) -> None:
        """Back to a green checkpoint: tracked edits undone, files the model added removed."""
        self.repo.git.reset("--hard", sha)
        self.repo.git.clean("-fd")

    # verdicts ---------------------------------------------------------------------------------
    def parity(self) -> Verdict:
        try:
            report = self._parity()
        except IntegrateError as exc:
            return Verdict(False, f"parity could not run: {exc.message}")
        return Verdict(report["passed"], describe_parity(report))

    def checks_text(self, paths: list[Path] | None = None) -> str:
        findings = check_paths(paths or self.check_files, use_cache=False)
        return as_text(findings) if findings else "no convention findings"

    # tools ------------------------------------------------------------------------------------
    def tools(self) -> dict[str, Tool]:
        tools = file_tools(self.ws, self.skills)

        def run_python(code: str, timeout: float = 60) -> str:
            if not isinstance(timeout, (int, float)) or not 0 < timeout <= RUN_PYTHON_MAX_S:
                raise ToolError(f"timeout must be a number of seconds in (0, {RUN_PYTHON_MAX_S}]")
            snippet = self.scratch / "snippet.py"
            snippet.write_text(code)
            res = sandbox.run(
                [sys.executable, str(snippet)], self.scratch, ro_paths=[self.ws.root, *self.ro_paths],
                env={"PYTHONPATH": str(self.python_path)}, limits=sandbox.Limits(wall_s=float(timeout)),
            )
            status = f"exit {res.returncode}" if res.reason == "exit" else f"stopped: {res.reason} after {res.wall_s:.1f} s"
            text = f"{status}\n--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}"
            if not res.ok:
                raise ToolError(text)
            return text

        def run_parity() -> str:
            verdict = self.parity()
            sha = self.checkpoint("Refine: green checkpoint (parity passed)") if verdict.passed else None
            return f"{verdict.text}\ngreen checkpoint committed: {sha[:10]}" if sha else verdict.text

        def run_checks(path: str | None = None) -> str:
            return self.checks_text([self.ws.resolve(path)] if path else None)

        extra = [
            Tool(
                "run_python",
                "Run a Python snippet in the sandbox (no network, workspace read-only, importable from the workspace). "
                "Returns exit status, stdout and stderr.",
                object_schema(["code"], code={"type": "string"}, timeout={"type": "number", "description": f"seconds, at most {RUN_PYTHON_MAX_S}"}),
                run_python,
            ),
            Tool(
                "run_parity",
                "Compare the port against the reference on seeded inputs (weights mapped by inference). "
                "When it passes after edits, the workspace is committed as a green checkpoint.",
                object_schema([]),
                run_parity,
            ),
            Tool("run_checks", "Run the diffusers convention checks on the model file (or on `path`).", object_schema([], path={"type": "string"}), run_checks),
        ]
        tools.update({t.name: t for t in extra})
        return tools


FINISH = Tool(
    "finish",
    "Call when the refinement is complete. Parity and the checks are then run by the orchestrator; "
    "if parity fails you get the report back and must fix it.",
    object_schema(["summary"], summary={"type": "string", "description": "what you changed and why, for the pull request"}),
    lambda summary: summary,  # handled by the loop itself
)
