"""Candidate weights made from the reference state by a mapping that is only data.

The mapping may come from an untrusted process (the mapping side runs both models); here it is
checked against what the two sides report and applied by trusted code, so what the candidate
receives is the reference's tensors renamed, sliced, concatenated, reordered or reshaped, and
nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sandbox.mapping import WeightMapping
from sandbox.parity.exchange import ExchangeError, load_tensors


def check_mapping(mapping: WeightMapping, reference_state: dict[str, Any], candidate_state: dict[str, Any] | None) -> None:
    """Raises ExchangeError when the mapping names keys neither side has."""
    for cand in mapping.pairs:
        if candidate_state is not None and cand not in candidate_state:
            raise ExchangeError(f"mapping targets {cand!r}, which the candidate does not have")
        for ref in mapping.reference_keys(cand) or [mapping.pairs[cand]]:
            if ref not in reference_state:
                raise ExchangeError(f"mapping reads {ref!r}, which the reference does not have")
    for cand, shape in mapping.reshape.items():
        if cand not in mapping.pairs or any(d < 0 for d in shape):
            raise ExchangeError(f"mapping reshape for {cand!r} is malformed")


def apply_mapping(mapping: WeightMapping, reference_dir: Path, candidate_state: dict[str, Any] | None) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(tensors for the candidate, problems). A tensor whose mapped shape is not the
    candidate's is left out and reported."""
    needed = sorted({k for cand in mapping.pairs for k in (mapping.reference_keys(cand) or [mapping.pairs[cand]])})
    source = load_tensors(reference_dir, "state.safetensors", needed)
    out, problems = {}, []
    for cand in mapping.pairs:
        try:
            tensor = mapping.tensor_for(cand, source.__getitem__)
        except (RuntimeError, ValueError, IndexError) as exc:
            problems.append(f"weight {cand} cannot be made from the reference by the mapping: {exc}")
            continue
        want = tuple(candidate_state[cand]["shape"]) if candidate_state is not None else tuple(tensor.shape)
        if tuple(tensor.shape) != want:
            problems.append(f"shape mismatch for {cand}: {tuple(tensor.shape)} vs candidate {want}")
            continue
        out[cand] = tensor.contiguous().clone()
    return out, problems
