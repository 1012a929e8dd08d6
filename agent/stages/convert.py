"""convert: the reference weights become the diffusers folder format (config.json +
diffusion_pytorch_model.safetensors, sharded when large) through a written `_weight_mapping.py`
and the streaming converter, reloaded with from_pretrained and compared, sandboxed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from agent.errors import IntegrateError
from agent.layouts import FOLDER, layout_of
from agent.layouts import mapping_file as layout_mapping_file
from agent.parity_run import candidate_config, candidate_location, parity_paths, side_env, write_spec
from agent.porting.formatting import format_file
from agent.publish.evidence import evidence_dir
from agent.reference_weights import reference_weight_files
from agent.run_state import Run
from agent.sandboxed import run_job
from sandbox import safe_files
from sandbox.mapping import WeightMapping
from sandbox.parity.exchange import MAX_TENSOR_FILE_BYTES


def convert(run: Run) -> dict[str, Any]:
    planned, scaffolded = run.result("plan"), run.result("scaffold")
    workdir = run.path("convert")
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir()
    files = reference_weight_files(run)
    root, module = candidate_location(run)
    # both models, for inference by order of use (the job runs them; the verdict comes later)
    paths = parity_paths(run, files)
    spec = write_spec(run, workdir / "mapping_spec.py", reference_weights=[str(p) for p in files])
    job = {
        "candidate_root": str(root),
        "candidate_module": module,
        "class_name": planned["class_name"],
        "config": candidate_config(run),
        "config_conversion": run.result("conventions").get("config_conversion") if run.is_done("conventions") else None,
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
        ro_paths=[Path(scaffolded["workspace"]), *paths.reference, *paths.candidate],
        env=side_env(paths)["mapping"],
        what="weight conversion",
    )
    if not result["ok"]:
        mapping = result.get("mapping") or {}
        unmatched = mapping.get("unmatched_candidate_names") or mapping.get("unmatched_reference_names") or []
        extra = f" (unmatched: {', '.join(unmatched[:3])})" if unmatched else ""
        raise IntegrateError(f"weight conversion failed: {result['error']}{extra}")

    # The mapping travels with the branch (evidence); the converted weights do not (large, and
    # reproducible from the reference with that mapping).
    weights = Path(scaffolded["workspace"]) / "weights" if planned["layout"] == "standalone" else run.path("weights")
    # flat: with the evidence; folder layout: in the model's folder, so conversion lives with the model
    mapping_file = layout_mapping_file(planned, Path(scaffolded["workspace"]), evidence_dir(run))
    mapping_file.parent.mkdir(parents=True, exist_ok=True)
    if weights.exists():
        shutil.rmtree(weights)
    try:  # the job's folder is sandbox-writable: copy regular files only, never through a link
        safe_files.copy_tree_out(workdir, "weights", weights, max_bytes=MAX_TENSOR_FILE_BYTES)
        safe_files.copy_out(workdir, "_weight_mapping.py", mapping_file, max_bytes=4 * 1024 * 1024)
    except OSError as exc:
        raise IntegrateError(f"weight conversion left unusable files: {exc}") from None
    if layout_of(planned) == FOLDER:  # part of the package now: formatted as diffusers' `make style` would
        format_file(mapping_file)
    try:
        mapping_data = WeightMapping.from_json(result.get("mapping_data"))
    except ValueError as exc:
        raise IntegrateError(f"weight conversion left a malformed mapping: {exc}") from None
    run.write_json("convert/mapping.json", mapping_data.to_json())
    return {
        "weights_dir": str(weights),
        "files": sorted(p.name for p in weights.iterdir()),
        "tensors": result["tensors"],
        "mapping": result["mapping"],
        "reload_equal": result["reload_equal"],
        "shards": result["shards"],
        "mapping_file": str(mapping_file),
        "reference_files": [str(p) for p in files],
        "mapping_json": str(run.path("convert", "mapping.json")),
    }
