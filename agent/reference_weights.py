"""The reference checkpoint as local files: the snapshot's own, or Hub files fetched into the run."""

from __future__ import annotations

import os
from pathlib import Path

from agent.errors import IntegrateError
from agent.run_state import Run
from agent.stages.resolve import network_errors
from sandbox.safetensors_header import SafetensorsFormatError, read_header


def reference_weight_files(run: Run) -> list[Path]:
    """Local paths of the reference checkpoint, fetching Hub files into the run on first use."""
    resolved = run.result("resolve")
    paths = []
    for entry in resolved["weights"]:
        if entry["path"]:
            paths.append(Path(entry["path"]))
            continue
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError

        dest = run.path("reference-weights")
        try:
            local = hf_hub_download(
                resolved["origin"], entry["file"], revision=resolved.get("revision"), local_dir=dest,
                token=os.environ.get("HF_TOKEN") or None,
            )
        except (*network_errors(), HfHubHTTPError) as exc:
            raise IntegrateError(f"cannot download {entry['file']} from {resolved['origin']}: {exc.__class__.__name__}: {exc}") from None
        try:
            read_header(local)
        except SafetensorsFormatError as exc:
            raise IntegrateError(f"corrupt safetensors file {exc}") from None
        paths.append(Path(local))
    return paths


def weight_names_and_roots(run: Run, files: list[Path]) -> tuple[list[str], list[Path]]:
    """The checkpoint's file names as the source lays them out, and the folders they sit under:
    a spec finds `name` under one of the roots, so it names no folder itself."""
    names, roots = [], []
    for entry, path in zip(run.result("resolve")["weights"], files, strict=True):
        depth = len(Path(entry["file"]).parts)
        names.append(entry["file"])
        roots.append(Path(path).parents[depth - 1])
    return names, sorted(set(roots))
