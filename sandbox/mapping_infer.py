"""Infer a weight mapping between two implementations of one model from how they run.

Names differ between a reference and its port (`encoder.down.0.block.1.norm1` against
`encoder.down_blocks.0.resnets.1.norm1`), but the order in which modules use their parameters
during a forward pass is the computation itself. Both models run once on the same seeded inputs;
each module that owns parameters is recorded the first time it runs; the two sequences are
aligned (longest common subsequence) where modules are compatible (the same number of
parameters, each of the same shape, or a 1x1 convolution against a linear layer of the same
size); aligned modules pair their parameters in order. What the forward never touched is
matched by name and shape; what is still unmatched is listed, never guessed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sandbox.mapping import WeightMapping, match_by_name


def usage_order(model: nn.Module, inputs: dict[str, Any]) -> list[tuple[str, list[tuple[str, tuple]]]]:
    """(module name, [(full parameter key, shape)]) in the order modules first run."""
    seen: list[tuple[str, list[tuple[str, tuple]]]] = []
    done: set[str] = set()
    handles = []
    for name, module in model.named_modules():
        own = [(f"{name}.{p}" if name else p, tuple(t.shape)) for p, t in module.named_parameters(recurse=False)]
        if not own:
            continue

        def hook(_mod, _args, _name=name, _own=own):
            if _name not in done:
                done.add(_name)
                seen.append((_name, _own))

        handles.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model.eval()(**inputs)
    finally:
        for h in handles:
            h.remove()
    return seen


def _compatible(a: tuple, b: tuple) -> str | None:
    """'same', 'reshape' (1x1 conv <-> linear, same numbers), or None."""
    if a == b:
        return "same"
    if len(a) != len(b) and a[:2] == b[:2] and all(d == 1 for d in (a[2:] if len(a) > len(b) else b[2:])):
        return "reshape"
    return None


def _module_match(ra: list[tuple[str, tuple]], cb: list[tuple[str, tuple]]) -> list[str] | None:
    if len(ra) != len(cb):
        return None
    kinds = [_compatible(r[1], c[1]) for r, c in zip(ra, cb, strict=True)]
    return None if None in kinds else kinds


def _align(ref_seq, cand_seq) -> list[tuple[int, int]]:
    """Longest common subsequence of compatible modules, in order."""
    n, m = len(ref_seq), len(cand_seq)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if _module_match(ref_seq[i][1], cand_seq[j][1]) is not None:
                table[i][j] = 1 + table[i + 1][j + 1]
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if _module_match(ref_seq[i][1], cand_seq[j][1]) is not None and table[i][j] == 1 + table[i + 1][j + 1]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def infer_mapping(reference: nn.Module, candidate: nn.Module, ref_inputs: dict, cand_inputs: dict) -> WeightMapping:
    ref_state, cand_state = reference.state_dict(), candidate.state_dict()
    ref_seq = usage_order(reference, ref_inputs)
    cand_seq = usage_order(candidate, cand_inputs)
    pairs: dict[str, str] = {}
    reshape: dict[str, tuple] = {}
    for i, j in _align(ref_seq, cand_seq):
        kinds = _module_match(ref_seq[i][1], cand_seq[j][1])
        for (rk, _rs), (ck, cs), kind in zip(ref_seq[i][1], cand_seq[j][1], kinds, strict=True):
            pairs[ck] = rk
            if kind == "reshape":
                reshape[ck] = cs
    # what the forward did not touch (buffers, unused branches): identical names and shapes
    rest = match_by_name(
        {k: v for k, v in ref_state.items() if k not in pairs.values()},
        {k: v for k, v in cand_state.items() if k not in pairs},
    )
    pairs.update(rest.pairs)
    mapping = WeightMapping(
        pairs=pairs,
        unmatched_reference=sorted(set(ref_state) - set(pairs.values())),
        unmatched_candidate=sorted(set(cand_state) - set(pairs)),
        source="inferred",
    )
    mapping.reshape = reshape
    return mapping
