"""Convert reference safetensors into the port's diffusers folder and reload it (runs sandboxed).

    python -m sandbox.jobs.convert_weights JOB_JSON RESULT_JSON

JOB_JSON: candidate_root, candidate_module, class_name, config, reference_files, out, mapping_out,
and optionally spec (a parity spec) and config_conversion (how a reference config.json becomes the
port's config, written into the mapping as convert_config). The port is built on the meta device (shapes only) and the
mapping is inferred from names and shapes; when that leaves weights unmatched (renamed, split or
fused tensors) and a spec is given, both models are run once and the mapping is inferred from the
order in which they use their weights. It is written as a torch-only `_weight_mapping.py`, the checkpoint is converted tensor by
tensor by `sandbox.convert`, config.json is written from the model, and the folder is reloaded
with `from_pretrained` and compared with the reference tensors one by one.
"""

import json
import sys
import traceback
from pathlib import Path

import torch
from safetensors import safe_open

from sandbox.convert import ConversionError
from sandbox.convert import convert as stream_convert
from sandbox.loading import load_class, read_json
from sandbox.mapping import match_by_name
from sandbox.safetensors_header import SafetensorsFormatError, read_header


def main() -> int:
    job_file, result_file = sys.argv[1:3]
    job = read_json(job_file)
    try:
        result = convert(job)
    except (ConversionError, SafetensorsFormatError) as exc:  # a one-line reason (a pickle, a bad header)
        result = {"ok": False, "error": str(exc)}
    except Exception as exc:  # the port is untrusted code: report, don't crash
        result = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}", "trace": traceback.format_exc(limit=4)}
    with open(result_file, "w") as fh:
        json.dump(result, fh, indent=2)
    return 0


def convert(job: dict) -> dict:
    cls = load_class(job["candidate_root"], job["candidate_module"], job["class_name"])
    with torch.device("meta"):
        model = cls(**job["config"])
    cand_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    where: dict[str, str] = {}
    ref_shapes: dict[str, tuple] = {}
    for path in job["reference_files"]:
        for key, info in read_header(path).tensors.items():
            ref_shapes[key], where[key] = tuple(info.shape), path
    mapping = match_by_name(ref_shapes, cand_shapes)
    if (mapping.unmatched_candidate or mapping.unmatched_reference) and job.get("spec"):
        mapping = _infer_by_usage(job["spec"], mapping, ref_shapes)
    if mapping.unmatched_candidate or mapping.unmatched_reference:
        return {"ok": False, "error": "weights could not all be mapped", "mapping": mapping.summary()}

    mapping_file = Path(job["mapping_out"])
    mapping_file.write_text(mapping.to_module_source(job["class_name"], job.get("config_conversion")))
    stats = stream_convert(job["reference_files"], mapping_file, job["out"], expect_keys=list(cand_shapes))
    model.save_config(job["out"])

    reloaded = cls.from_pretrained(job["out"]).state_dict()
    mismatched = []
    handles = {}
    def reference_tensor(key: str) -> torch.Tensor:
        path = where[key]
        if path not in handles:
            handles[path] = safe_open(path, framework="pt")
        return handles[path].get_tensor(key)

    for cand_key in mapping.pairs:
        expected = mapping.tensor_for(cand_key, reference_tensor)
        if cand_key not in reloaded or not torch.equal(reloaded[cand_key], expected):
            mismatched.append(cand_key)
    return {
        "ok": not mismatched,
        "error": f"{len(mismatched)} tensors differ after reload (first: {mismatched[0]})" if mismatched else None,
        "mapping": mapping.summary(),
        "mapping_data": mapping.to_json(),
        "tensors": stats["tensors_out"],
        "shards": stats["shards"],
        "reload_equal": not mismatched,
    }


def _infer_by_usage(spec_path: str, by_name, ref_shapes: dict):
    """The usage-order mapping from the spec's two models, if it covers more than the names did
    and names only keys the checkpoint has."""
    from sandbox.mapping_infer import use_checkpoint_names
    from sandbox.parity.runside.infer import infer_for_spec
    from sandbox.parity.runside.spec import load_spec

    spec = load_spec(spec_path)
    reference, candidate = spec.reference(), spec.candidate()
    inferred = infer_for_spec(reference.eval(), candidate.eval(), spec.inputs(0), by_name)
    if inferred is by_name:
        return by_name
    use_checkpoint_names(inferred, reference, set(ref_shapes))
    if not inferred.used_reference_keys() <= set(ref_shapes):
        return by_name
    inferred.source = "usage"
    return inferred


if __name__ == "__main__":
    sys.exit(main())
