"""Layer trace: record every module's output on both sides and align the two traces.

Names differ between a reference and its port, so modules are aligned by the weights they own
(mapped through the weight mapping), and weightless modules by execution order and shape
between those anchors. Hooks fire when a module finishes, so the first diverging pair in that
order is the innermost, earliest place where the port goes astray.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class TraceEntry:
    name: str
    call: int  # k-th call of this module in the forward
    output: torch.Tensor | None
    keys: frozenset[str]  # state-dict keys owned by the module's subtree


def first_tensor(out) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "sample") and isinstance(out.sample, torch.Tensor):
        return out.sample
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        for item in out:
            t = first_tensor(item)
            if t is not None:
                return t
    return None


class Tracer:
    def __init__(self, model: nn.Module):
        self.entries: list[TraceEntry] = []
        self._handles = []
        self._calls: dict[str, int] = {}
        param_keys = {k for k in model.state_dict()}
        for name, module in model.named_modules():
            if not name:
                continue
            prefix = name + "."
            keys = frozenset(k for k in param_keys if k.startswith(prefix))
            self._handles.append(module.register_forward_hook(self._hook(name, keys)))

    def _hook(self, name: str, keys: frozenset[str]):
        def record(_module, _inputs, output):
            call = self._calls.get(name, 0)
            self._calls[name] = call + 1
            t = first_tensor(output)
            self.entries.append(TraceEntry(name, call, None if t is None else t.detach().float().cpu(), keys))

        return record

    def close(self) -> None:
        for h in self._handles:
            h.remove()


def align(ref: list[TraceEntry], cand: list[TraceEntry], cand_to_ref: dict[str, list[str]]) -> list[tuple[TraceEntry, TraceEntry]]:
    """Pairs (reference entry, candidate entry) in reference execution order."""
    ref_to_cand: dict[str, set[str]] = {}
    for c, refs in cand_to_ref.items():
        for r in refs:
            ref_to_cand.setdefault(r, set()).add(c)
    by_signature: dict[tuple[frozenset[str], int], int] = {}
    for i, e in enumerate(cand):
        if e.keys:
            by_signature.setdefault((e.keys, e.call), i)

    pairs: list[tuple[int, int]] = []
    used: set[int] = set()
    for ri, r in enumerate(ref):
        if not r.keys:
            continue
        mapped = frozenset(k for key in r.keys for k in ref_to_cand.get(key, ()))
        ci = by_signature.get((mapped, r.call))
        if ci is not None and ci not in used and len(mapped) > 0:
            pairs.append((ri, ci))
            used.add(ci)

    # Weightless modules: walk forward between anchors, pairing by output shape.
    anchors = sorted(pairs)
    result = list(pairs)
    bounds = [(-1, -1), *anchors, (len(ref), len(cand))]
    for (r0, c0), (r1, c1) in zip(bounds, bounds[1:], strict=False):
        cj = c0 + 1
        for ri in range(r0 + 1, r1):
            if ref[ri].keys or ref[ri].output is None:
                continue
            while cj < c1 and (cand[cj].keys or cand[cj].output is None or cj in used):
                cj += 1
            # look ahead a little for a matching shape
            for probe in range(cj, min(c1, cj + 4)):
                if cand[probe].keys or probe in used or cand[probe].output is None:
                    continue
                if cand[probe].output.shape == ref[ri].output.shape:
                    result.append((ri, probe))
                    used.add(probe)
                    cj = probe + 1
                    break
    result.sort()
    return [(ref[ri], cand[ci]) for ri, ci in result]
