"""Use the usage-order inference when names and shapes leave weights unmatched."""

from __future__ import annotations

import copy

from sandbox.mapping import WeightMapping
from sandbox.mapping_infer import infer_mapping


def infer_for_spec(reference, candidate, inputs: dict, by_name: WeightMapping) -> WeightMapping:
    """Run both sides once (on copies, so no state leaks into the parity run) and keep whichever
    mapping matches more keys."""
    try:
        inferred = infer_mapping(copy.deepcopy(reference), copy.deepcopy(candidate), inputs["reference"], inputs["candidate"])
    except Exception:  # an inference failure leaves the name-based mapping, which then reports what is unmatched
        return by_name
    return inferred if len(inferred.pairs) > len(by_name.pairs) else by_name
