"""Use the usage-order inference when names and shapes leave weights unmatched."""

from __future__ import annotations

import copy

from sandbox.mapping import WeightMapping
from sandbox.mapping_infer import infer_mapping
from sandbox.mapping_resolve import resolve_by_running


def infer_for_spec(reference, candidate, inputs: dict, by_name: WeightMapping) -> WeightMapping:
    """Run both sides (on copies, so no state leaks into the parity run) and keep whichever
    mapping matches more keys; ambiguous orders are then decided by running the layers."""
    try:
        ref_copy, cand_copy = copy.deepcopy(reference), copy.deepcopy(candidate)
        inferred = infer_mapping(ref_copy, cand_copy, inputs["reference"], inputs["candidate"])
        if len(inferred.pairs) <= len(by_name.pairs):
            return by_name
    except Exception:  # an inference failure leaves the name-based mapping, which then reports what is unmatched
        return by_name
    if inferred.unmatched_candidate:
        return inferred
    try:
        return resolve_by_running(ref_copy, cand_copy, inputs["reference"], inputs["candidate"], inferred)
    except Exception as exc:  # the port's own forward may fail on some option; keep what inference found, and say so
        inferred.unresolved.append(f"deciding ambiguous orders by running failed: {exc.__class__.__name__}: {exc}")
        return inferred
