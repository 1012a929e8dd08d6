"""Weight mapping between a reference state dict and a candidate model.

This is the name-and-shape matcher: identical names (optionally after dropping a common
prefix such as ``model.`` or ``module.``) with identical shapes. It says exactly what it could
not match; it never pairs keys by guesswork.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

COMMON_PREFIXES = ("model.", "module.", "net.", "diffusion_model.", "transformer.", "_orig_mod.")


@dataclass
class WeightMapping:
    pairs: dict[str, str]  # candidate key -> reference key
    unmatched_reference: list[str] = field(default_factory=list)
    unmatched_candidate: list[str] = field(default_factory=list)
    source: str = "inferred"
    dropped_prefix: str | None = None
    # candidate key -> every reference key its value came from (fused and split tensors)
    sources: dict[str, list[str]] = field(default_factory=dict)

    def reference_keys(self, cand_key: str) -> list[str]:
        return self.sources.get(cand_key) or ([self.pairs[cand_key]] if cand_key in self.pairs else [])

    def apply(self, reference_state: MappingABC[str, Any]) -> dict[str, Any]:
        return {cand: reference_state[ref] for cand, ref in self.pairs.items()}

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "matched": len(self.pairs),
            "unmatched_reference": len(self.unmatched_reference),
            "unmatched_candidate": len(self.unmatched_candidate),
            "unmatched_reference_names": self.unmatched_reference,
            "unmatched_candidate_names": self.unmatched_candidate,
            "dropped_prefix": self.dropped_prefix,
        }


def _shape(v: Any) -> tuple:
    return tuple(v) if isinstance(v, (list, tuple)) else tuple(v.shape)


def match_by_name(reference: MappingABC[str, Any], candidate: MappingABC[str, Any]) -> WeightMapping:
    """`reference` and `candidate` map names to tensors or shapes."""
    best: WeightMapping | None = None
    for prefix in (None, *COMMON_PREFIXES):
        renamed = {
            (k[len(prefix):] if prefix and k.startswith(prefix) else k): k for k in reference
        } if prefix else {k: k for k in reference}
        if prefix and not any(k.startswith(prefix) for k in reference):
            continue
        pairs = {
            c: renamed[c]
            for c in candidate
            if c in renamed and _shape(candidate[c]) == _shape(reference[renamed[c]])
        }
        mapping = WeightMapping(
            pairs=pairs,
            unmatched_reference=sorted(set(reference) - set(pairs.values())),
            unmatched_candidate=sorted(set(candidate) - set(pairs)),
            dropped_prefix=prefix,
        )
        if best is None or len(mapping.pairs) > len(best.pairs):
            best = mapping
    assert best is not None
    return best
