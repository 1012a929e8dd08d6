"""The host's part of a parity check: runs each side in its own process, carries data (never
code) between them, and hands the files to the verdict.

  reference side   spec + reference paths      -> inputs for both sides, reference outputs,
                                                   reference state (or the spec's conversion)
  mapping side     spec + both (only when the spec does not convert and no mapping is given)
                                                -> a mapping, as data, checked here
  candidate side   spec + candidate paths      -> candidate outputs (and its saved copy's)
  verdict          trusted code, no spec       -> the report

Which process sees which paths is the launcher's business (`sandboxed_launcher`); the in-process
launcher exists for benchmarks and tests of the comparison on trusted specs only.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import safe_files
from sandbox.mapping import WeightMapping
from sandbox.parity.errors import ParityError
from sandbox.parity.exchange import MAX_TENSOR_FILE_BYTES, ExchangeError, read_result, save_tensors
from sandbox.parity.presets import DTYPES
from sandbox.parity.verdict import decide
from sandbox.parity.verdict.weights import apply_mapping, check_mapping

# launch(phase, spec, work folder, seeds) runs one side and raises ParityError when it could not.
Launch = Callable[[str, Path, Path, list[int]], None]


def fresh_seed() -> int:
    """A seed nobody could know before the run: the port cannot have been fitted to its inputs."""
    return secrets.randbelow(2**31 - 1) + 1


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def run_parity(
    spec: Path,
    work: Path,
    launch: Launch,
    *,
    seeds: Sequence[int],
    device: str = "cpu",
    dtype: str = "float32",
    mapping: WeightMapping | None = None,
) -> dict[str, Any]:
    """Run the sides and judge. `mapping` (data) replaces the mapping side when the caller
    already knows how reference weights become candidate weights."""
    if dtype not in DTYPES:
        raise ParityError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    seeds = list(seeds)
    work.mkdir(parents=True, exist_ok=True)
    ref_dir = _fresh(work / "reference")
    launch("reference", spec, ref_dir, seeds)
    try:
        ref = read_result(ref_dir)
        settings = ref["settings"]
        cand_dir = _fresh(work / "candidate")
        safe_files.copy_out(ref_dir, "inputs.safetensors", cand_dir / "inputs.safetensors", max_bytes=MAX_TENSOR_FILE_BYTES)
        (cand_dir / "inputs.json").write_text(json.dumps(ref["candidate_inputs"]))
        problems: list[str] = []
        mapped_state = None
        if settings["has_convert"]:
            safe_files.copy_out(ref_dir, "converted.safetensors", cand_dir / "weights.safetensors", max_bytes=MAX_TENSOR_FILE_BYTES)
        elif settings["copy_weights"]:
            if mapping is None:
                map_dir = _fresh(work / "mapping")
                launch("mapping", spec, map_dir, seeds[:1])
                found = read_result(map_dir)
                try:
                    mapping = WeightMapping.from_json(found["mapping"])
                except ValueError as exc:
                    raise ExchangeError(f"the mapping side left a malformed mapping: {exc}") from None
                mapped_state = found["candidate_state"]
            check_mapping(mapping, ref["state"], mapped_state)
            tensors, problems = apply_mapping(mapping, ref_dir, mapped_state)
            save_tensors(cand_dir / "weights.safetensors", tensors)
    except (KeyError, TypeError) as exc:
        raise ParityError(f"a side left a malformed result ({exc.__class__.__name__}: {exc})") from None
    except (ExchangeError, OSError) as exc:
        raise ParityError(str(exc)) from None

    launch("candidate", spec, cand_dir, seeds)
    if mapped_state is not None:
        try:
            if set(read_result(cand_dir)["state"]) != set(mapped_state):
                problems.append("the candidate's weights differ between the mapping run and the candidate run")
        except (ExchangeError, KeyError, TypeError) as exc:
            raise ParityError(str(exc)) from None
    return decide(ref_dir, cand_dir, dtype=dtype, device=device, mapping=mapping, mapping_problems=problems)


def in_process_launcher(device: str = "cpu", dtype: str = "float32") -> Launch:
    """Every side in this process: no isolation, so only for trusted specs (benchmarks, tests
    of the comparison). The verdict is the same code as in a sandboxed run."""
    import torch

    from sandbox.parity.runside.candidate import run_candidate
    from sandbox.parity.runside.mapping import run_mapping
    from sandbox.parity.runside.reference import run_reference

    phases = {"reference": run_reference, "candidate": run_candidate, "mapping": run_mapping}

    def launch(phase: str, spec: Path, work: Path, seeds: list[int]) -> None:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ParityError("--device cuda requested but no CUDA device is visible")
        phases[phase](str(spec), work, seeds, torch.device(device), getattr(torch, dtype))

    return launch


@dataclass
class SidePaths:
    """Host paths each side may read (read-only). The candidate side never gets the reference's."""

    reference: list[Path] = field(default_factory=list)
    candidate: list[Path] = field(default_factory=list)
    shared: list[Path] = field(default_factory=list)


def side_env(paths: SidePaths) -> dict[str, dict[str, str]]:
    """Each side learns its own paths (and only those) from the environment. torch.compile is
    off on every side: parity compares eager numerics (compiling on a CPU took minutes for a
    reference that wraps its functions in it); whether the port compiles is the compliance
    suite's question."""
    ref = os.pathsep.join(str(p) for p in [*paths.reference, *paths.shared])
    cand = os.pathsep.join(str(p) for p in [*paths.candidate, *paths.shared])
    eager = {"TORCHDYNAMO_DISABLE": "1"}
    return {
        "reference": {"INTEGRATE_REFERENCE_PATHS": ref, **eager},
        "candidate": {"INTEGRATE_CANDIDATE_PATHS": cand, **eager},
        "mapping": {"INTEGRATE_REFERENCE_PATHS": ref, "INTEGRATE_CANDIDATE_PATHS": cand, **eager},
    }


@dataclass
class SandboxLog:
    """What the sandboxed sides reported about their isolation, for the report."""

    isolation: str = "full"
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)


def sandboxed_launcher(paths: SidePaths, logs: Path, *, device: str, dtype: str, limits=None, record: SandboxLog | None = None) -> Launch:
    """Each side in its own sandbox, seeing the spec's folder, its own paths and its work folder.
    `logs` is a host folder no side can write; each side's output is kept there."""
    import sandbox

    logs.mkdir(parents=True, exist_ok=True)
    visible = {
        "reference": [*paths.reference, *paths.shared],
        "candidate": [*paths.candidate, *paths.shared],
        "mapping": [*paths.reference, *paths.candidate, *paths.shared],
    }
    envs = side_env(paths)

    def launch(phase: str, spec: Path, work: Path, seeds: list[int]) -> None:
        res = sandbox.run(
            [sys.executable, "-m", "sandbox.parity.runside", phase, str(spec), str(work), "--seeds", ",".join(map(str, seeds)),
             "--device", device, "--dtype", dtype],
            work,
            ro_paths=[spec.parent, *visible[phase]],
            env=envs[phase],
            limits=limits,
            gpu=device.startswith("cuda") or None,
        )
        safe_files.write_text(logs, f"{phase}.log", f"$ {phase} side (isolation {res.isolation}, {res.reason}, exit {res.returncode}, "
                              f"{res.wall_s}s, peak {res.peak_rss_mb} MB)\n--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}\n")
        if record is not None:
            if res.isolation != "full":
                record.isolation = res.isolation
            record.notes = sorted({*record.notes, *res.isolation_notes})
            record.wall_s = round(record.wall_s + res.wall_s, 3)
            record.peak_rss_mb = max(record.peak_rss_mb, res.peak_rss_mb)
            record.phases[phase] = {"wall_s": res.wall_s, "peak_rss_mb": res.peak_rss_mb, "reason": res.reason}
        if not res.ok:
            detail = res.one_line_error() if res.reason == "exit" else f"stopped by the sandbox ({res.reason} after {res.wall_s}s)"
            raise ParityError(f"the {phase} side could not run: {detail}")

    return launch
