"""Convert reference safetensors into the port's diffusers folder and reload it (runs sandboxed).

    python -m sandbox.jobs.convert_weights JOB_JSON RESULT_JSON

JOB_JSON: candidate_root, candidate_module, class_name, config, reference_files, out.
Tensors are read one at a time from memory-mapped input; the saved folder is reloaded with
`from_pretrained` and compared tensor by tensor.
"""

import json
import sys
import traceback

import torch
from safetensors import safe_open

from sandbox.loading import load_class, read_json
from sandbox.mapping import match_by_name


def main() -> int:
    job_file, result_file = sys.argv[1:3]
    job = read_json(job_file)
    try:
        result = convert(job)
    except Exception as exc:  # the port is untrusted code: report, don't crash
        result = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}", "trace": traceback.format_exc(limit=4)}
    with open(result_file, "w") as fh:
        json.dump(result, fh, indent=2)
    return 0


def convert(job: dict) -> dict:
    cls = load_class(job["candidate_root"], job["candidate_module"], job["class_name"])
    model = cls(**job["config"])
    cand_state = model.state_dict()

    where: dict[str, str] = {}
    ref_shapes: dict[str, tuple] = {}
    for path in job["reference_files"]:
        with safe_open(path, framework="pt") as f:
            for key in f.keys():
                ref_shapes[key] = tuple(f.get_slice(key).get_shape())
                where[key] = path
    mapping = match_by_name(ref_shapes, cand_state)
    if mapping.unmatched_candidate or mapping.unmatched_reference:
        return {"ok": False, "error": "weights could not all be mapped", "mapping": mapping.summary()}

    converted = {}
    by_file: dict[str, list[tuple[str, str]]] = {}
    for cand_key, ref_key in mapping.pairs.items():
        by_file.setdefault(where[ref_key], []).append((cand_key, ref_key))
    for path, pairs in by_file.items():
        with safe_open(path, framework="pt") as f:
            for cand_key, ref_key in pairs:
                converted[cand_key] = f.get_tensor(ref_key)
    model.load_state_dict(converted, strict=True)
    model.save_pretrained(job["out"], safe_serialization=True)

    reloaded = cls.from_pretrained(job["out"]).state_dict()
    mismatched = [k for k, v in model.state_dict().items() if k not in reloaded or not torch.equal(v, reloaded[k])]
    return {
        "ok": not mismatched,
        "error": f"{len(mismatched)} tensors differ after reload (first: {mismatched[0]})" if mismatched else None,
        "mapping": mapping.summary(),
        "tensors": len(converted),
        "reload_equal": not mismatched,
    }


if __name__ == "__main__":
    sys.exit(main())
