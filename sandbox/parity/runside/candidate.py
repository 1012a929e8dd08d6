"""The candidate side: builds the port, loads the weights the host prepared for it, runs it
on the inputs the reference side made, and records what it returns (and what its saved copy
returns, when the spec has saved()).

It sees the spec, the port and the prepared files; never the reference code, the reference
checkpoint or the reference outputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from sandbox.parity.errors import ParityError
from sandbox.parity.exchange import RESULT, decode_tree, save_tensors
from sandbox.parity.runside.record import run_model, state_description
from sandbox.parity.runside.spec import build, load_spec, seed_everything

# A different initialisation than the reference's, so an unloaded parameter cannot match by luck.
CANDIDATE_INIT_SEED = 1_000_003
SAVED_INIT_SEED = 1_000_033


def _load_weights(model: torch.nn.Module, path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    weights = load_file(str(path))
    own = model.state_dict()
    unexpected = sorted(set(weights) - set(own))
    shape_bad = sorted(k for k in weights if k in own and tuple(weights[k].shape) != tuple(own[k].shape))
    usable = {k: v for k, v in weights.items() if k in own and k not in shape_bad}
    model.load_state_dict(usable, strict=False)
    return {
        "unexpected": unexpected,
        "shape_mismatch": [[k, list(weights[k].shape), list(own[k].shape)] for k in shape_bad],
        "unloaded": sorted(set(own) - set(usable)),
    }


def run_candidate(spec_path: str, work: Path, seeds: list[int], device: torch.device, dtype: torch.dtype) -> None:
    spec = load_spec(spec_path)
    from safetensors.torch import load_file

    trees = json.loads((work / "inputs.json").read_text())
    input_tensors = load_file(str(work / "inputs.safetensors"))
    kwargs_sets = [decode_tree(t, input_tensors) for t in trees]
    if len(kwargs_sets) != len(seeds):
        raise ParityError("inputs and seeds disagree")

    seed_everything(CANDIDATE_INIT_SEED)
    candidate = build(spec, "candidate")
    result: dict[str, Any] = {"side": "candidate", "state": state_description(candidate)}
    weights = work / "weights.safetensors"
    if weights.is_file():
        result["load"] = _load_weights(candidate, weights)

    tensors: dict[str, torch.Tensor] = {}
    candidate.eval().to(device, dtype)
    result.update(run_model(
        candidate, kwargs_sets, seeds, spec=spec, select_hook="candidate_output", side="candidate",
        device=device, dtype=dtype, tensors=tensors, prefix="", trace=True,
    ))
    del candidate
    if callable(getattr(spec, "saved", None)):
        seed_everything(SAVED_INIT_SEED)
        saved = build(spec, "saved").eval().to(device, dtype)
        result["saved"] = run_model(
            saved, kwargs_sets, seeds, spec=spec, select_hook="candidate_output", side="saved candidate",
            device=device, dtype=dtype, tensors=tensors, prefix="saved/", trace=False,
        )["outputs"]
    save_tensors(work / "outputs.safetensors", tensors)
    (work / RESULT).write_text(json.dumps(result))
