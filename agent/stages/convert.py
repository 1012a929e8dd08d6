"""convert: the reference weights become the diffusers folder format (config.json +
diffusion_pytorch_model.safetensors, sharded when large) through a written `_weight_mapping.py`
and the streaming converter, reloaded with from_pretrained and compared, sandboxed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from agent.errors import IntegrateError
from agent.parity_run import candidate_location, write_spec
from agent.run_state import Run
from agent.sandboxed import run_job
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


def convert(run: Run) -> dict[str, Any]:
    analysis, planned, scaffolded = run.result("analyze"), run.result("plan"), run.result("scaffold")
    workdir = run.path("convert")
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir()
    files = reference_weight_files(run)
    root, module = candidate_location(run)
    spec = write_spec(run, workdir / "mapping_spec.py")  # both models, for inference by order of use
    job = {
        "candidate_root": str(root),
        "candidate_module": module,
        "class_name": planned["class_name"],
        "config": analysis["config_kwargs"],
        "reference_files": [str(p) for p in files],
        "out": str(workdir / "weights"),
        "mapping_out": str(workdir / "_weight_mapping.py"),
        "spec": str(spec),
    }
    (workdir / "job.json").write_text(json.dumps(job, indent=2))
    result, _ = run_job(
        "convert_weights",
        [workdir / "job.json", workdir / "result.json"],
        workspace=workdir,
        result_file=workdir / "result.json",
        ro_paths=[Path(scaffolded["workspace"]), Path(run.result("resolve")["snapshot"]), *{p.parent for p in files}],
        what="weight conversion",
    )
    if not result["ok"]:
        mapping = result.get("mapping") or {}
        unmatched = mapping.get("unmatched_candidate_names") or mapping.get("unmatched_reference_names") or []
        extra = f" (unmatched: {', '.join(unmatched[:3])})" if unmatched else ""
        raise IntegrateError(f"weight conversion failed: {result['error']}{extra}")

    if planned["layout"] == "standalone":
        weights = Path(scaffolded["workspace"]) / "weights"
        mapping_file = Path(scaffolded["workspace"]) / "_weight_mapping.py"
    else:
        weights = run.path("weights")
        mapping_file = run.path("_weight_mapping.py")
    if weights.exists():
        shutil.rmtree(weights)
    shutil.move(str(workdir / "weights"), weights)
    shutil.copy(workdir / "_weight_mapping.py", mapping_file)
    return {
        "weights_dir": str(weights),
        "files": sorted(p.name for p in weights.iterdir()),
        "tensors": result["tensors"],
        "mapping": result["mapping"],
        "reload_equal": result["reload_equal"],
        "shards": result["shards"],
        "mapping_file": str(mapping_file),
        "reference_files": [str(p) for p in files],
    }
