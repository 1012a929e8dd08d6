"""Run the block proof job (sandboxed) on a planted reference module and decide its result, as the
blocks stage does: shared by the tests that plant reference code for the block library."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import agent.porting.blocks as library
from agent.porting.blocks.decide import ClassDecision, decide
from agent.sandboxed import run_job

SPEC = '''
import sys

import torch

ROOT = {root!r}
tolerance = {{"max_abs": 1e-5, "cosine": 0.99999}}


def reference():
    sys.path.insert(0, ROOT)
    from planted import {model}

    model = {model}()
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / (p[0].numel() ** 0.5 if p.dim() >= 2 else 10.0))
    return model


candidate = reference


{inputs}


def inputs(seed):
    kw = planted_inputs(seed)
    return {{"reference": kw, "candidate": dict(kw)}}
'''


def prove(tmp_path_factory, planted: str, model: str, inputs: str) -> dict[str, ClassDecision]:
    """Decisions per planted class; `inputs` is the source of `planted_inputs(seed)` -> kwargs of
    `model`'s forward (seeded weights: randn scaled by fan-in, small vectors)."""
    root = tmp_path_factory.mktemp("planted")
    (root / "planted.py").write_text(planted)
    spec_dir = tmp_path_factory.mktemp("spec")
    spec = SPEC.format(root=str(root), model=model, inputs=textwrap.dedent(inputs).strip())
    (spec_dir / "spec.py").write_text(spec)
    result = run_proof(root, spec_dir / "spec.py", tmp_path_factory.mktemp("job"))
    classes, _ = decide(result, 1e-5, {}, skip={model}, source=planted)
    return {c.name: c for c in classes}


def run_proof(root: Path, spec: Path, job: Path) -> dict:
    """The proof job's result for the reference in `root/planted.py`, built and fed by `spec`."""
    library_dir = Path(library.__file__).parent
    (job / "job.json").write_text(json.dumps({"spec": str(spec), "reference_root": str(root), "reference_modules": ["planted"],
                                              "library": str(library_dir), "tolerance": 1e-5, "max_calls": 2}))
    result, _ = run_job("try_blocks", [job / "job.json", job / "result.json"], workspace=job, result_file=job / "result.json",
                        ro_paths=[root, spec.parent, library_dir], what="the block proof")
    assert result["ok"], result.get("error")
    return result
