"""The block proof job run the way the blocks stage runs it (sandboxed), on a planted reference
module `planted` under a folder; shared by the block tests."""

import json
from pathlib import Path

import agent.porting.blocks as library
from agent.sandboxed import run_job


def run_proof(root: Path, spec: Path, job: Path) -> dict:
    """The proof's result for the reference in `root/planted.py`, built and fed by `spec`."""
    library_dir = Path(library.__file__).parent
    (job / "job.json").write_text(json.dumps({"spec": str(spec), "reference_root": str(root), "reference_modules": ["planted"],
                                              "library": str(library_dir), "tolerance": 1e-5, "max_calls": 2}))
    result, _ = run_job("try_blocks", [job / "job.json", job / "result.json"], workspace=job, result_file=job / "result.json",
                        ro_paths=[root, spec.parent, library_dir], what="the block proof")
    assert result["ok"], result.get("error")
    return result
