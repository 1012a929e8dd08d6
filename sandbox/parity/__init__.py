"""Parity engine: does the candidate compute what the reference computes, and if not, where not.

The run side (runside/) imports specs and models and only runs inside the sandbox, one process
per side; the verdict (verdict/) reads the files the sides leave and never imports a spec or a
model; host.py runs the sides and carries data between them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sandbox.parity.errors import ParityError
from sandbox.parity.presets import PRESETS


def run_parity_in_process(spec: str | Path, device: str = "cpu", dtype: str = "float32", seed: int = 0,
                          seeds: list[int] | None = None, work: Path | None = None) -> dict[str, Any]:
    """Both sides in this process (no isolation): for trusted specs in benchmarks and tests of
    the comparison. The verdict is the same code a sandboxed run uses."""
    from sandbox.parity.host import in_process_launcher, run_parity

    with tempfile.TemporaryDirectory(prefix="parity-") as tmp:
        return run_parity(Path(spec), work or Path(tmp), in_process_launcher(device, dtype), seeds=seeds or [seed], device=device, dtype=dtype)


__all__ = ["PRESETS", "ParityError", "run_parity_in_process"]
