"""Decide what names, shapes and run order cannot: run the model on each option and keep the one
that reproduces the reference.

Some mappings are ambiguous by construction. A fused qkv split between to_q/to_k/to_v fits in
any row order; a modulation Linear whose output the reference chunks as (shift, scale) and the
port as (scale, shift) has identical shapes either way; reference to_q/to_k/to_v fused into one
qkv can be stacked in any order. Inference picks the order the modules ran in. When the mapped
port then does not reproduce the reference, this module finds the first layer that diverges,
lists the ambiguous choices among the weights used up to that layer (row orders of splits and
fusions, swapped halves or thirds of projection outputs), runs the port once per option, and
keeps the option that moves the divergence furthest (ideally removes it). What no option fixes
is recorded in `mapping.unresolved`, so the report says it instead of guessing.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import torch
from torch import nn

from sandbox.mapping import WeightMapping
from sandbox.parity.runside.tracer import TraceEntry, Tracer, first_tensor
from sandbox.parity.verdict.align import align

MAX_ROUNDS = 6
NEAREST_MODULES = 6  # how far back from a divergence to look for the ambiguous weights
REL_TOL = 1e-4


def _run(model: nn.Module, inputs: dict[str, Any]):
    tracer = Tracer(model)
    try:
        with torch.no_grad():
            out = first_tensor(model(**inputs))
    finally:
        tracer.close()
    return out, tracer.entries


def _rows(entries: list[TraceEntry]) -> list[dict[str, Any]]:
    """Trace entries in the form the verdict's alignment reads."""
    return [{"name": e.name, "call": e.call, "keys": e.keys, "tensor": None if e.output is None else n,
             "shape": None if e.output is None else list(e.output.shape)} for n, e in enumerate(entries)]


def _close(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None or a.shape != b.shape:
        return False
    a, b = a.detach().float(), b.detach().float()
    return bool((a - b).abs().max() <= REL_TOL * max(1.0, float(a.abs().max())))


class _Judge:
    """Loads a mapping into the port, runs it and says where (if anywhere) it first diverges."""

    def __init__(self, reference: nn.Module, candidate: nn.Module, ref_inputs: dict, cand_inputs: dict):
        self.candidate, self.cand_inputs = candidate, cand_inputs
        self.ref_state = reference.state_dict()
        self.cand_keys = set(candidate.state_dict())
        self.ref_out, self.ref_trace = _run(reference, ref_inputs)

    def divergence(self, mapping: WeightMapping) -> tuple[float, list[str], str | None]:
        """(position in the reference trace, or inf when it matches; candidate modules with
        weights that ran up to there, latest last; the diverging reference module)."""
        tensors = {k: v for k, v in mapping.apply(self.ref_state).items() if k in self.cand_keys}
        self.candidate.load_state_dict(tensors, strict=False)
        out, trace = _run(self.candidate, self.cand_inputs)
        if _close(self.ref_out, out):
            return float("inf"), [], None
        for ri, ci in align(_rows(self.ref_trace), _rows(trace), {k: mapping.reference_keys(k) for k in mapping.pairs}):
            r, c = self.ref_trace[ri], trace[ci]
            if r.keys and r.output is not None and c.output is not None and r.output.shape == c.output.shape and not _close(r.output, c.output):
                return float(ri), _owners(trace[: ci + 1], self.cand_keys), r.name
        return float(len(self.ref_trace)), _owners(trace, self.cand_keys), "the output"


def _owners(entries, keys: set[str]) -> list[str]:
    """Modules that own weights directly, in the order they finished, each once."""
    owning = {_module(k) for k in keys}
    seen: list[str] = []
    for e in entries:
        if e.name in owning and e.name not in seen:
            seen.append(e.name)
    return seen


def _module(key: str) -> str:
    return key.rsplit(".", 1)[0]


def _options(mapping: WeightMapping, scope: set[str], shapes: dict[str, tuple]) -> list[tuple[str, WeightMapping]]:
    options = []
    # row orders of a split: one permutation shared by the weight and bias of the fused module
    groups: dict[str, list[str]] = {}
    for cand in mapping.rows:
        groups.setdefault(_module(mapping.pairs[cand]), []).append(cand)
    for ref_module, cands in groups.items():
        targets = sorted({_module(c) for c in cands}, key=lambda m: min(mapping.rows[c][0] for c in cands if _module(c) == m))
        if not set(targets) & scope or len(targets) > 4:
            continue
        sizes = {t: next(b - a for c, (a, b) in mapping.rows.items() if c in cands and _module(c) == t) for t in targets}
        for perm in itertools.permutations(range(len(targets))):
            if perm == tuple(range(len(targets))):
                continue
            # targets[slot] moves to position perm[slot]; offsets follow the sizes (a qkv + mlp split is uneven)
            stacked = sorted(range(len(targets)), key=lambda slot: perm[slot])
            starts, at = {}, 0
            for slot in stacked:
                starts[targets[slot]] = at
                at += sizes[targets[slot]]
            m = copy.deepcopy(mapping)
            for cand in cands:
                start = starts[_module(cand)]
                m.rows[cand] = (start, start + sizes[_module(cand)])
            options.append((f"rows of {ref_module} in the order {', '.join(targets[s] for s in stacked)}", m))
    # stacking order of a fusion
    fused_modules: dict[str, list[str]] = {}
    for cand in mapping.fused:
        fused_modules.setdefault(_module(cand), []).append(cand)
    for cand_module, cands in fused_modules.items():
        if cand_module not in scope or len(mapping.fused[cands[0]]) > 4:
            continue
        for perm in itertools.permutations(range(len(mapping.fused[cands[0]]))):
            if perm == tuple(range(len(perm))):
                continue
            m = copy.deepcopy(mapping)
            for cand in cands:
                m.fused[cand] = [mapping.fused[cand][p] for p in perm]
                m.pairs[cand] = m.fused[cand][0]
            options.append((f"{cand_module} stacked from {', '.join(_module(k) for k in m.fused[cands[0]])}", m))
    # halves or thirds of a projection's output in another order (shift/scale against scale/shift)
    by_module: dict[str, list[str]] = {}
    for cand in mapping.pairs:
        if cand not in mapping.rows and cand not in mapping.fused and _module(cand) in scope:
            by_module.setdefault(_module(cand), []).append(cand)
    for cand_module, cands in by_module.items():
        weight = next((c for c in cands if len(shapes.get(c, ())) >= 2), None)
        if weight is None:
            continue
        rows = shapes[weight][0]
        for n in (2, 3):
            if rows % n or rows < 2 * n:
                continue
            for order in itertools.permutations(range(n)):
                if order == tuple(range(n)) or mapping.chunk_order.get(weight) == (n, order):
                    continue
                m = copy.deepcopy(mapping)
                for c in cands:
                    if shapes.get(c, (0,))[0] == rows:
                        m.chunk_order[c] = (n, order)
                options.append((f"{cand_module} output in {n} chunks ordered {order}", m))
    return options


def resolve_by_running(reference: nn.Module, candidate: nn.Module, ref_inputs: dict, cand_inputs: dict,
                       mapping: WeightMapping) -> WeightMapping:
    """The mapping with ambiguous orders decided by running; `decisions` and `unresolved` say what
    was decided and what could not be."""
    judge = _Judge(reference, candidate, ref_inputs, cand_inputs)
    shapes = {k: tuple(v.shape) for k, v in candidate.state_dict().items()}
    position, owners, where = judge.divergence(mapping)
    for _ in range(MAX_ROUNDS):
        if position == float("inf"):
            return mapping
        options = _options(mapping, set(owners[-NEAREST_MODULES:]), shapes)
        scored = [(judge.divergence(m), text, m) for text, m in options]
        better = [s for s in scored if s[0][0] > position]
        if not better:
            tried = f"; tried {len(options)} orderings ({', '.join(t for _, t, _ in scored[:4])}{', ...' if len(scored) > 4 else ''}), none reproduces it" if options else "; no ambiguous weights near it"
            mapping.unresolved.append(f"the port diverges from the reference at {where}{tried}")
            return mapping
        (position, owners, next_where), text, mapping = max(better, key=lambda s: s[0][0])
        effect = "reproduces the reference" if position == float("inf") else f"moves the first divergence past {where}"
        mapping.decisions.append(f"{text}: chosen by running the layers (of {len(options)} options, the one that {effect})")
        where = next_where
    if position != float("inf"):
        mapping.unresolved.append(f"the port still diverges at {where} after {MAX_ROUNDS} decisions")
    return mapping
