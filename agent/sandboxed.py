"""Run one of `sandbox.jobs` through the sandbox and read the JSON it writes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sandbox
from agent.errors import IntegrateError
from sandbox import safe_files


def run_job(
    job: str,
    args: Sequence[str],
    *,
    workspace: Path,
    result_file: Path,
    ro_paths: Sequence[Path] = (),
    limits: sandbox.Limits | None = None,
    env: dict[str, str] | None = None,
    what: str,
) -> tuple[dict[str, Any], sandbox.SandboxResult]:
    """Run `python -m sandbox.jobs.<job> ARGS...`; the job writes `result_file` inside `workspace`."""
    result_file.unlink(missing_ok=True)
    res = sandbox.run(
        [sys.executable, "-m", f"sandbox.jobs.{job}", *map(str, args)],
        workspace,
        ro_paths=ro_paths,
        limits=limits,
        env=env,
    )
    # The job could write its workspace: the log goes beside it, never through what it left.
    safe_files.write_text(workspace.parent, f"{workspace.name}.{job}.log", (
        f"$ sandbox {job} (isolation: {res.isolation}, {res.reason}, exit {res.returncode}, "
        f"{res.wall_s}s, peak {res.peak_rss_mb} MB)\n--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}\n"
    ))
    try:
        result = safe_files.read_json(workspace, result_file.relative_to(workspace))
    except (OSError, ValueError) as exc:
        if res.ok and not isinstance(exc, FileNotFoundError):
            raise IntegrateError(f"{what} left an unreadable result: {exc}") from None
        detail = res.one_line_error() if res.reason == "exit" else f"stopped by the sandbox ({res.reason} after {res.wall_s}s)"
        raise IntegrateError(f"{what} failed in the sandbox: {detail}") from None
    if not isinstance(result, dict):
        raise IntegrateError(f"{what} left a result that is not a JSON object")
    return result, res
