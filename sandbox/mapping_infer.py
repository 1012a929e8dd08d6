"""Infer a weight mapping between two implementations of one model from how they run.

Names differ between a reference and its port (`encoder.down.0.block.1.norm1` against
`encoder.down_blocks.0.resnets.1.norm1`), but the order in which modules use their parameters
during a forward pass is the computation itself. Both models run once on the same seeded inputs;
each module that owns parameters is recorded the first time it runs; the two sequences are
aligned in order (skipping a few modules on either side to resynchronise) where modules are compatible (the same number of
parameters, each of the same shape, or a 1x1 convolution against a linear layer of the same
size); aligned modules pair their parameters in order. A reference module left over whose
parameters are the row-wise concatenation of the next candidate modules that ran (a fused qkv
against to_q, to_k, to_v) is split between them in the order they ran; the other way round,
reference modules that ran one after another and stack into one candidate module (to_q, to_k,
to_v against a fused qkv) are fused in that order. Modules the walk skipped on both sides are
aligned again among themselves (a fused qkv whose parts ran after other modules). Where the order is a guess (which rows are q,
which half is shift), `sandbox.mapping_resolve` runs the layer on each option and keeps the one
that reproduces the reference. Parameters shared by several modules (tied weights) pair from
every module that uses them. What the forward never touched is matched by name and shape; what is still
unmatched is listed, never guessed.
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


def _fits_rows(ref_params, run) -> bool:
    """The run's parameters, stacked row-wise, have the reference module's shapes."""
    if any(len(params) != len(ref_params) for _, params in run):
        return False
    return all(
        shape[0] == sum(params[n][1][0] for _, params in run) and all(params[n][1][1:] == shape[1:] for _, params in run)
        for n, (_, shape) in enumerate(ref_params)
    )


def _align(ref_seq, cand_seq, window: int = 8) -> list[tuple[list[int], list[int]]]:
    """Walk both sequences in order: a compatible module pairs one to one; a reference module
    that matches the next 2-4 candidate modules stacked row-wise pairs with all of them (a fused
    qkv against to_q, to_k, to_v), and 2-4 reference modules that stack into the next candidate
    module pair with it (the reverse); otherwise skip ahead (on either side, a few steps at
    most) to the nearest pair that matches again."""
    out, i, j = [], 0, 0
    n, m = len(ref_seq), len(cand_seq)
    while i < n and j < m:
        if _module_match(ref_seq[i][1], cand_seq[j][1]) is not None:
            out.append(([i], [j]))
            i, j = i + 1, j + 1
            continue
        run = next((k for k in (2, 3, 4) if j + k <= m and _fits_rows(ref_seq[i][1], cand_seq[j:j + k])), None)
        if run:
            out.append(([i], list(range(j, j + run))))
            i, j = i + 1, j + run
            continue
        run = next((k for k in (2, 3, 4) if i + k <= n and _fits_rows(cand_seq[j][1], ref_seq[i:i + k])), None)
        if run:
            out.append((list(range(i, i + run)), [j]))
            i, j = i + run, j + 1
            continue
        skip = next(
            ((di, dj) for d in range(1, window + 1) for di, dj in ((0, d), (d, 0), (d, d))
             if i + di < n and j + dj < m and _module_match(ref_seq[i + di][1], cand_seq[j + dj][1]) is not None),
            None,
        )
        if skip is None:
            i += 1
        else:
            i, j = i + skip[0], j + skip[1]
    return out


def _pair_groups(ref_seq, cand_seq, groups, pairs: dict, rows: dict, fused: dict, reshape: dict) -> None:
    """Pair the parameters of aligned module groups: one to one, one reference module split by
    rows between several candidate modules, or several reference modules fused into one."""
    for is_, js in groups:
        if len(is_) > 1:
            for n, (ck, _shape) in enumerate(cand_seq[js[0]][1]):
                fused[ck] = [ref_seq[i][1][n][0] for i in is_]
                pairs[ck] = fused[ck][0]
            continue
        i = is_[0]
        if len(js) > 1:  # rows go to the candidate modules in the order they run (q, k, v for the usual attention)
            for n, (rk, _shape) in enumerate(ref_seq[i][1]):
                start = 0
                for m in js:
                    ck, cs = cand_seq[m][1][n]
                    pairs[ck] = rk
                    rows[ck] = (start, start + cs[0])
                    start += cs[0]
            continue
        kinds = _module_match(ref_seq[i][1], cand_seq[js[0]][1])
        for (rk, _rs), (ck, cs), kind in zip(ref_seq[i][1], cand_seq[js[0]][1], kinds, strict=True):
            pairs[ck] = rk
            if kind == "reshape":
                reshape[ck] = cs


def infer_mapping(reference: nn.Module, candidate: nn.Module, ref_inputs: dict, cand_inputs: dict) -> WeightMapping:
    ref_state, cand_state = reference.state_dict(), candidate.state_dict()
    ref_seq = usage_order(reference, ref_inputs)
    cand_seq = usage_order(candidate, cand_inputs)
    pairs: dict[str, str] = {}
    reshape: dict[str, tuple] = {}
    rows: dict[str, tuple[int, int]] = {}  # candidate key -> row range of its (fused) reference tensor
    fused: dict[str, list[str]] = {}  # candidate key -> reference keys stacked row-wise, in run order
    _pair_groups(ref_seq, cand_seq, _align(ref_seq, cand_seq), pairs, rows, fused, reshape)
    # what the forward did not touch (buffers, unused branches): identical names and shapes
    used = set(pairs.values()) | {k for keys in fused.values() for k in keys}
    rest = match_by_name(
        {k: v for k, v in ref_state.items() if k not in used},
        {k: v for k, v in cand_state.items() if k not in pairs},
    )
    pairs.update(rest.pairs)
    used |= set(rest.pairs.values())
    # modules the walk skipped on both sides, aligned again among themselves in run order: a
    # fused qkv whose split parts ran after other modules (to_q, to_k, to_v, then add_q_proj, ...)
    ref_left = [e for e in ref_seq if not any(k in used for k, _ in e[1])]
    cand_left = [e for e in cand_seq if not any(k in pairs for k, _ in e[1])]
    if ref_left and cand_left:
        _pair_groups(ref_left, cand_left, _align(ref_left, cand_left), pairs, rows, fused, reshape)
        used = set(pairs.values()) | {k for keys in fused.values() for k in keys}
    tied = tied_keys(reference)
    used |= {alias for k in list(used) for alias in tied.get(k, ())}  # a tied copy is used when its twin is
    mapping = WeightMapping(
        pairs=pairs,
        unmatched_reference=sorted(set(ref_state) - used),
        unmatched_candidate=sorted(set(cand_state) - set(pairs)),
        source="inferred",
    )
    mapping.reshape = reshape
    mapping.rows = rows
    mapping.fused = fused
    mapping.sources = {ck: fused.get(ck, [rk]) for ck, rk in pairs.items()}
    return mapping


def tied_keys(model: nn.Module) -> dict[str, list[str]]:
    """State-dict keys that are one tensor under several names: key -> its other names."""
    by_storage: dict[tuple, list[str]] = {}
    for key, tensor in model.state_dict(keep_vars=True).items():
        if tensor.device.type == "meta":
            continue  # no storage to compare
        by_storage.setdefault((tensor.data_ptr(), tuple(tensor.shape), tensor.dtype), []).append(key)
    return {k: [o for o in keys if o != k] for keys in by_storage.values() if len(keys) > 1 for k in keys}


def use_checkpoint_names(mapping: WeightMapping, reference: nn.Module, present: set[str]) -> None:
    """A checkpoint saved with tied weights deduplicated (safetensors' save_model) keeps one name
    of each tied group: point the mapping at the name the checkpoint has."""
    tied = tied_keys(reference)

    def present_name(key: str) -> str:
        return key if key in present else next((alias for alias in tied.get(key, ()) if alias in present), key)

    mapping.pairs = {cand: present_name(ref) for cand, ref in mapping.pairs.items()}
    mapping.fused = {cand: [present_name(r) for r in refs] for cand, refs in mapping.fused.items()}
    mapping.unmatched_reference = [k for k in mapping.unmatched_reference if k in present]
