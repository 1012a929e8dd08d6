"""Pairing the two layer traces.

Names differ between a reference and its port, so modules are paired by the weights they own
(mapped through the weight mapping), and weightless modules by execution order and shape
between those anchors. Several modules can own exactly the same weights (a wrapper around its
only child): such entries pair in the order they finished on each side, so both stay in the
table and a divergence in the wrapper's own computation is named at the wrapper.
"""

from __future__ import annotations

from typing import Any


def align(ref: list[dict[str, Any]], cand: list[dict[str, Any]], cand_to_ref: dict[str, list[str]]) -> list[tuple[int, int]]:
    """(reference index, candidate index) pairs, in reference execution order."""
    ref_to_cand: dict[str, set[str]] = {}
    for c, refs in cand_to_ref.items():
        for r in refs:
            ref_to_cand.setdefault(r, set()).add(c)
    by_signature: dict[tuple[frozenset[str], int], list[int]] = {}
    for i, e in enumerate(cand):
        if e["keys"] and e["tensor"] is not None:
            by_signature.setdefault((frozenset(e["keys"]), e["call"]), []).append(i)

    pairs: list[tuple[int, int]] = []
    used: set[int] = set()
    for ri, r in enumerate(ref):
        if not r["keys"] or r["tensor"] is None:  # a module whose output holds no tensor: nothing to compare
            continue
        mapped = frozenset(k for key in r["keys"] for k in ref_to_cand.get(key, ()))
        if not mapped:
            continue
        waiting = by_signature.get((mapped, r["call"]))
        if waiting:
            ci = waiting.pop(0)
            pairs.append((ri, ci))
            used.add(ci)

    # Weightless modules: walk forward between anchors, pairing by output shape.
    result = list(pairs)
    bounds = [(-1, -1), *sorted(pairs), (len(ref), len(cand))]
    for (r0, c0), (r1, c1) in zip(bounds, bounds[1:], strict=False):
        cj = c0 + 1
        for ri in range(r0 + 1, r1):
            if ref[ri]["keys"] or ref[ri]["tensor"] is None:
                continue
            while cj < c1 and (cand[cj]["keys"] or cand[cj]["tensor"] is None or cj in used):
                cj += 1
            for probe in range(cj, min(c1, cj + 4)):  # look ahead a little for a matching shape
                if cand[probe]["keys"] or probe in used or cand[probe]["tensor"] is None:
                    continue
                if cand[probe]["shape"] == ref[ri]["shape"]:
                    result.append((ri, probe))
                    used.add(probe)
                    cj = probe + 1
                    break
    return sorted(result)
