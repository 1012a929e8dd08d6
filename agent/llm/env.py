"""What the refinement loop acts on: the port's workspace, its git history, the sandbox, parity
and the checks. The loop only sees tools and verdicts; this module owns how they are made.

run_python, run_parity and run_checks run untrusted code (the model's snippets, the edited
port), so the first two go through the sandbox; the checks only parse files. Each of them gets
at most what is left of the session's wall time (`deadline`, set by the loop): run_python's
sandbox timeout is cut to it, and so is parity's when its callable takes `timeout_s`.

Git runs through agent.gitsafe (hooks, fsmonitor, filters and the user's config off, the git dir
pinned outside the tree when the env is made, before the model acts).
"""

from __future__ import annotations

import inspect
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sandbox
from agent.checks import check_port
from agent.checks.formats import as_text
from agent.errors import IntegrateError
from agent.gitsafe import Git
from agent.llm.paths import Workspace, write_text
from agent.llm.tools import MAX_FILE_BYTES, Tool, ToolError, file_tools, object_schema
from agent.skills import Skill
from agent.workspace import commit_all

RUN_PYTHON_MAX_S = 300
MIN_CALL_S = 1.0  # a call that would get less wall time than this is not started


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
        self.repo = Git.for_workspace(workspace)  # pinned now, before the model has written anything
        self.skills = skills
        self._parity = parity
        self.check_files = check_files
        self.scratch = scratch
        self.ro_paths = ro_paths
        self.python_path = python_path
        self.on_checkpoint: Callable[[str, str], None] = lambda sha, message: None
        self.deadline = math.inf  # time.monotonic() when the session's wall time runs out
        self._parity_takes_timeout = "timeout_s" in inspect.signature(parity).parameters
        scratch.mkdir(parents=True, exist_ok=True)

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def _budget(self, what: str) -> float:
        """Seconds `what` may run: what is left of the session's wall time; ToolError when spent."""
        left = self.time_left()
        if left < MIN_CALL_S:
            raise ToolError(f"{what} not run: the session's wall-time budget (--max-wall) is spent")
        return left

    # git --------------------------------------------------------------------------------------
    def head(self) -> str:
        return self.repo.head()

    def dirty(self) -> bool:
        return self.repo.dirty()

    def checkpoint(self, message: str) -> str | None:
        """Commit the workspace as a green checkpoint; None when nothing changed."""
        sha = commit_all(self.repo, message)
        if sha:
            self.on_checkpoint(sha, message)
        return sha

    def revert(self, sha: str) -> None:
        """Back to a green checkpoint: tracked edits undone, files the model added removed."""
        self.repo.reset_to(sha)

    # verdicts ---------------------------------------------------------------------------------
    def parity(self, timeout_s: float | None = None) -> Verdict:
        """Parity now; `timeout_s` caps its wall time when the callable accepts a cap."""
        try:
            report = self._parity(timeout_s=timeout_s) if self._parity_takes_timeout and timeout_s else self._parity()
        except IntegrateError as exc:
            return Verdict(False, f"parity could not run: {exc.message}")
        return Verdict(report["passed"], describe_parity(report))

    def checks_text(self, paths: list[Path] | None = None) -> str:
        try:
            findings = check_port(paths or self.check_files)  # the model sees the tamper rules too
        except (RecursionError, ValueError, OSError, MemoryError) as exc:  # e.g. an expression nested past ast's limit
            return f"the convention checks could not run: {type(exc).__name__}: {exc}"[:500]
        return as_text(findings) if findings else "no convention findings"

    # tools ------------------------------------------------------------------------------------
    def tools(self) -> dict[str, Tool]:
        tools = file_tools(self.ws, self.skills)

        def run_python(code: str, timeout: float = 60) -> str:
            if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= RUN_PYTHON_MAX_S:
                raise ToolError(f"timeout must be a number of seconds in (0, {RUN_PYTHON_MAX_S}]")
            if len(code.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
                raise ToolError(f"code is over {MAX_FILE_BYTES:,} bytes")
            left = self._budget("run_python")
            wall = min(float(timeout), left)
            snippet = self.scratch / "snippet.py"
            snippet.unlink(missing_ok=True)  # the sandbox may have left a link here; never written through
            write_text(snippet, code.encode("utf-8", "replace"))
            res = sandbox.run(
                [sys.executable, str(snippet)], self.scratch, ro_paths=[self.ws.root, *self.ro_paths],
                env={"PYTHONPATH": str(self.python_path)}, limits=sandbox.Limits(wall_s=wall),
            )
            status = f"exit {res.returncode}" if res.reason == "exit" else f"stopped: {res.reason} after {res.wall_s:.1f} s"
            if wall < timeout:
                status += f" (timeout cut to {wall:.0f} s: what was left of the session's wall time)"
            text = f"{status}\n--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}"
            if not res.ok:
                raise ToolError(text)
            return text

        def run_parity() -> str:
            verdict = self.parity(timeout_s=self._budget("run_parity"))
            sha = self.checkpoint("Refine: green checkpoint (parity passed)") if verdict.passed else None
            return f"{verdict.text}\ngreen checkpoint committed: {sha[:10]}" if sha else verdict.text

        def run_checks(path: str | None = None) -> str:
            self._budget("run_checks")
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
