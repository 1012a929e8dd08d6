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
    # candidate key -> its shape, where the bytes are the same but the shape is not (1x1 conv <-> linear)
    reshape: dict[str, tuple] = field(default_factory=dict)
    # candidate key -> (start, end) rows of its reference tensor (a fused tensor split)
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)
    # candidate key -> reference keys concatenated row-wise (split tensors fused); pairs holds the first
    fused: dict[str, list[str]] = field(default_factory=dict)
    # candidate key -> (n, order): its reference tensor cut in n row chunks, put back in this order
    # (a shift/scale pair stored as scale/shift); decided by running the layer, see mapping_resolve
    chunk_order: dict[str, tuple[int, tuple[int, ...]]] = field(default_factory=dict)
    # what inference decided by running the layers, and what it could not decide, in words
    decisions: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs, "unmatched_reference": self.unmatched_reference,
            "unmatched_candidate": self.unmatched_candidate, "source": self.source,
            "dropped_prefix": self.dropped_prefix, "sources": self.sources,
            "reshape": {k: list(v) for k, v in self.reshape.items()},
            "rows": {k: list(v) for k, v in self.rows.items()}, "fused": self.fused,
            "chunk_order": {k: [n, list(order)] for k, (n, order) in self.chunk_order.items()},
            "decisions": self.decisions, "unresolved": self.unresolved,
        }

    @classmethod
    def from_json(cls, data: Any) -> WeightMapping:
        """A mapping from untrusted JSON: every field type-checked, nothing evaluated."""

        def strs(v: Any, what: str) -> list[str]:
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ValueError(f"mapping {what}: expected a list of strings")
            return v

        def ints(v: Any, what: str) -> tuple[int, ...]:
            if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
                raise ValueError(f"mapping {what}: expected a list of integers")
            return tuple(v)

        def table(v: Any, what: str) -> dict[str, Any]:
            if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
                raise ValueError(f"mapping {what}: expected an object keyed by names")
            return v

        if not isinstance(data, dict):
            raise ValueError("mapping: expected an object")
        pairs = table(data.get("pairs", {}), "pairs")
        if not all(isinstance(v, str) for v in pairs.values()):
            raise ValueError("mapping pairs: expected name -> name")
        chunk_order = {}
        for k, v in table(data.get("chunk_order", {}), "chunk_order").items():
            if not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], int)):
                raise ValueError("mapping chunk_order: expected [n, order]")
            order = ints(v[1], "chunk_order")
            if sorted(order) != list(range(v[0])):
                raise ValueError(f"mapping chunk_order for {k}: not a permutation of {v[0]} chunks")
            chunk_order[k] = (v[0], order)
        rows = {k: ints(v, "rows") for k, v in table(data.get("rows", {}), "rows").items()}
        if any(len(r) != 2 or not 0 <= r[0] < r[1] for r in rows.values()):
            raise ValueError("mapping rows: expected [start, end) with 0 <= start < end")
        prefix = data.get("dropped_prefix")
        source = data.get("source", "inferred")
        if not isinstance(source, str) or not (prefix is None or isinstance(prefix, str)):
            raise ValueError("mapping source / dropped_prefix: expected strings")
        return cls(
            pairs=dict(pairs),
            unmatched_reference=strs(data.get("unmatched_reference", []), "unmatched_reference"),
            unmatched_candidate=strs(data.get("unmatched_candidate", []), "unmatched_candidate"),
            source=source,
            dropped_prefix=prefix,
            sources={k: strs(v, "sources") for k, v in table(data.get("sources", {}), "sources").items()},
            reshape={k: ints(v, "reshape") for k, v in table(data.get("reshape", {}), "reshape").items()},
            rows=rows,
            fused={k: strs(v, "fused") for k, v in table(data.get("fused", {}), "fused").items()},
            chunk_order=chunk_order,
            decisions=[str(x) for x in strs(data.get("decisions", []), "decisions")],
            unresolved=[str(x) for x in strs(data.get("unresolved", []), "unresolved")],
        )

    def reference_keys(self, cand_key: str) -> list[str]:
        if cand_key in self.fused:
            return list(self.fused[cand_key])
        return self.sources.get(cand_key) or ([self.pairs[cand_key]] if cand_key in self.pairs else [])

    def used_reference_keys(self) -> set[str]:
        return set(self.pairs.values()) | {k for keys in self.fused.values() for k in keys}

    def apply(self, reference_state: MappingABC[str, Any]) -> dict[str, Any]:
        return {cand: self.tensor_for(cand, reference_state.__getitem__) for cand in self.pairs}

    def tensor_for(self, cand: str, get: Any) -> Any:
        """The candidate's tensor from the reference tensors `get(key)` returns: rows fused or
        sliced, chunks reordered, reshaped, or as is."""
        import torch

        if cand in self.fused:
            t = torch.cat([get(k) for k in self.fused[cand]], dim=0)
        else:
            t = get(self.pairs[cand])
        if cand in self.rows:
            a, b = self.rows[cand]
            t = t[a:b]
        if cand in self.chunk_order:
            n, order = self.chunk_order[cand]
            chunks = t.chunk(n, dim=0)
            t = torch.cat([chunks[i] for i in order], dim=0)
        return t.reshape(self.reshape[cand]) if cand in self.reshape else t

    def to_module_source(self, title: str, config_conversion: dict[str, Any] | None = None) -> str:
        """The mapping as a `_weight_mapping.py` (torch only): a readable rename table plus small
        named handlers for splits, fusions, chunk reorders and tied (copied) tensors; with
        `config_conversion` (sandbox.config_renames), also CONFIG_RENAMES and convert_config()."""
        by_ref: dict[str, list[str]] = {}
        for cand, ref in self.pairs.items():
            if cand not in self.fused:
                by_ref.setdefault(ref, []).append(cand)
        copies = {ref: sorted(cands) for ref, cands in by_ref.items() if len(cands) > 1 and not any(c in self.rows for c in cands)}
        special = set(self.rows) | set(self.fused) | set(self.chunk_order) | {c for cands in copies.values() for c in cands}
        renamed = {ref: cand for cand, ref in sorted(self.pairs.items(), key=lambda kv: kv[1]) if ref != cand and cand not in special}
        kept = sum(1 for cand, ref in self.pairs.items() if ref == cand and cand not in special)
        splits: dict[str, list] = {}
        for cand, (a, b) in sorted(self.rows.items(), key=lambda kv: (self.pairs[kv[0]], kv[1])):
            splits.setdefault(self.pairs[cand], []).append((cand, a, b))
        reorder = {self.pairs[c]: (c, n, tuple(order)) for c, (n, order) in sorted(self.chunk_order.items()) if c not in self.rows and c not in self.fused}
        lines = [
            f'"""Weight mapping for {title}: reference checkpoint keys -> diffusers keys.',
            "",
            f"Generated by integrate from {self.evidence}.",
            *(f"Decided by running the layers: {d}." for d in self.decisions),
            "Depends only on torch. Convert with:",
            "    integrate convert CHECKPOINT --mapping _weight_mapping.py --out DIR",
            '"""',
            "",
            f"# {len(self.pairs)} tensors; {kept} keep their names.",
            "KEYS = {",
            *(f"    {ref!r}: {cand!r}," for ref, cand in renamed.items()),
            "}",
            "",
            "# same bytes, another shape (1x1 convolution <-> linear), keyed by the reference key",
            "RESHAPE = {",
            *(f"    {self.pairs[c]!r}: {tuple(s)!r}," for c, s in sorted(self.reshape.items()) if c not in special),
            "}",
            "",
            f"DROP = {{{', '.join(f'{k!r}: {self.dropped_reason!r}' for k in self.unmatched_reference)}}}",
            "",
            "# fused reference tensors split by rows between diffusers tensors: (name, start, end)",
            "SPLITS = {",
            *(f"    {ref!r}: {parts!r}," for ref, parts in splits.items()),
            "}",
            "",
            "# reference tensors cut in n row chunks and put back in another order (e.g. shift/scale -> scale/shift)",
            "REORDER = {",
            *(f"    {ref!r}: {value!r}," for ref, value in sorted(reorder.items())),
            "}",
            "",
            "# one reference tensor feeding several diffusers tensors (tied or shared weights)",
            "COPIES = {",
            *(f"    {ref!r}: {cands!r}," for ref, cands in sorted(copies.items())),
            "}",
            "",
            "",
            "def split_rows(key, tensor):",
            "    return {name: tensor[start:end] for name, start, end in SPLITS[key]}",
            "",
            "",
            "def reorder_chunks(key, tensor):",
            "    import torch  # here, not at the top: a converter can read this table before torch is loaded",
            "",
            "    name, n, order = REORDER[key]",
            "    chunks = tensor.chunk(n, dim=0)",
            "    return {name: torch.cat([chunks[i] for i in order], dim=0)}",
            "",
            "",
            "def copy_to(key, tensor):",
            "    return dict.fromkeys(COPIES[key], tensor)",
            "",
            "",
            "def concat_rows(*tensors):",
            "    import torch",
            "",
            "    return torch.cat(tensors, dim=0)",
            "",
            "",
            "# several reference tensors fused row-wise into one diffusers tensor (q, k, v -> qkv)",
            "FUSE = {",
            *(f"    {cand!r}: ({list(refs)!r}, concat_rows)," for cand, refs in sorted(self.fused.items())),
            "}",
            "",
            "",
            "def _exact(key):",
            '    return "^" + key.replace(".", "\\\\.") + "$"',
            "",
            "",
            "HANDLERS = {",
            "    **{_exact(key): split_rows for key in SPLITS},",
            "    **{_exact(key): reorder_chunks for key in REORDER},",
            "    **{_exact(key): copy_to for key in COPIES},",
            "}",
            "",
        ]
        if config_conversion and (config_conversion.get("renames") or config_conversion.get("per_head")):
            from sandbox.config_renames import config_source

            lines.append(config_source(config_conversion))
        return "\n".join(lines)

    dropped_reason: str = "not used by the diffusers model"

    @property
    def evidence(self) -> str:
        if self.source == "usage":
            return "names, shapes and the order each side uses its weights in one forward pass"
        return "names and shapes"

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "matched": len(self.pairs),
            "unmatched_reference": len(self.unmatched_reference),
            "unmatched_candidate": len(self.unmatched_candidate),
            "unmatched_reference_names": self.unmatched_reference,
            "unmatched_candidate_names": self.unmatched_candidate,
            "dropped_prefix": self.dropped_prefix,
            "fused": len(self.fused),
            "split": len(self.rows),
            "decided_by_running": self.decisions,
            "unresolved": self.unresolved,
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
