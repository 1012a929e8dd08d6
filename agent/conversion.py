"""Streaming checkpoint conversion through the sandbox (`integrate convert`, `integrate verify`).

The mapping is code, so the converter runs sandboxed; it writes into a staging folder beside the
destination, which the host reads back without following links and moves into place only when
everything succeeded, so a failure leaves nothing behind."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sandbox
from agent.errors import IntegrateError
from sandbox import safe_files


def convert_checkpoints(
    checkpoints: list[Path],
    out: Path,
    *,
    mapping: Path | None = None,
    expect_keys: Path | None = None,
    config: Path | None = None,
    max_shard_bytes: int = 5 * 10**9,
    timeout: float = 7200,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, Any], sandbox.SandboxResult]:
    """Convert into `out` (new, or an empty folder). Returns (the converter's result, the sandbox result)."""
    out_path = out.resolve()
    if out_path.exists() and (not out_path.is_dir() or any(out_path.iterdir())):
        raise IntegrateError(f"--out exists and is not empty, refusing to overwrite it: {out}")
    inputs = [c.resolve() for c in checkpoints]
    extras = [p.resolve() for p in (mapping, expect_keys, config) if p]
    for path in [*inputs, *extras]:
        if not path.is_file():
            raise IntegrateError(f"file not found: {path}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".integrate-convert-", dir=out_path.parent))
    cmd = [sys.executable, "-m", "sandbox.convert", *map(str, inputs), "--out", str(staging / "out"),
           "--max-shard-bytes", str(max_shard_bytes), "--progress-file", str(staging / "progress"),
           "--result", str(staging / "result.json")]
    for flag, value in (("--mapping", mapping), ("--expect-keys", expect_keys), ("--config", config)):
        if value:
            cmd += [flag, str(value.resolve())]
    from agent.prefetch import prefetch

    prefetch(inputs)  # the disk works while the job starts its interpreter and imports torch

    def poll() -> None:
        if progress is None:
            return
        try:
            done, total = map(int, safe_files.read_text(staging, "progress", max_bytes=200).split())
            progress(done, total)
        except (OSError, ValueError):
            pass

    try:
        ro = sorted({p.parent for p in inputs} | {p.parent for p in extras})
        res = sandbox.run(cmd, staging, ro_paths=ro, limits=sandbox.Limits(wall_s=timeout, memory_mb=65536, file_mb=1 << 20), poll=poll)
        poll()
        if not res.ok:
            raise IntegrateError(f"conversion failed: {res.one_line_error() if res.reason == 'exit' else res.reason}")
        try:  # the staging folder was the job's to write: read and copy it without following links
            result = safe_files.read_json(staging, "result.json")
            staged = staging / "staged"
            safe_files.copy_tree_out(staging, "out", staged, max_bytes=1 << 50)
        except (OSError, ValueError) as exc:
            raise IntegrateError(f"conversion left unusable output: {exc}") from None
        if out_path.exists():  # an empty folder the user made
            for child in staged.iterdir():
                child.rename(out_path / child.name)
        else:
            staged.rename(out_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result, res
