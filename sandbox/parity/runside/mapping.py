"""The mapping side: both models in one process, only to decide how reference weights become
candidate weights (names and shapes, else the order each model uses its weights, see
sandbox/mapping_infer.py). Its one product is the mapping as data; the host checks it against
what the two sides report and applies it itself, so nothing else from this process reaches the
candidate.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sandbox.mapping import match_by_name
from sandbox.parity.exchange import RESULT
from sandbox.parity.runside.candidate import CANDIDATE_INIT_SEED
from sandbox.parity.runside.record import state_description
from sandbox.parity.runside.spec import build, call, load_spec, seed_everything


def run_mapping(spec_path: str, work: Path, seeds: list[int], device: torch.device, dtype: torch.dtype) -> None:
    from sandbox.parity.runside.infer import infer_for_spec

    spec = load_spec(spec_path)
    seed_everything(seeds[0])
    reference = build(spec, "reference")
    seed_everything(CANDIDATE_INIT_SEED)
    candidate = build(spec, "candidate")
    by_name = match_by_name(reference.state_dict(), candidate.state_dict())
    mapping = by_name
    if by_name.unmatched_candidate or by_name.unmatched_reference:
        mapping = infer_for_spec(reference, candidate, call(spec, "inputs", seeds[0]), by_name)
    result = {"side": "mapping", "mapping": mapping.to_json(), "candidate_state": state_description(candidate)}
    (work / RESULT).write_text(json.dumps(result))
