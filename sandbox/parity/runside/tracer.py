"""Forward hooks on every module: what each module returned, in the order modules finish."""

from __future__ import annotations

import dataclasses
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
    """The tensor a module's output is mostly about: itself, `.sample`, or the first found (in a
    tuple, list, dict or dataclass, e.g. a modulation layer's (shift, scale, gate) record)."""
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "sample") and isinstance(out.sample, torch.Tensor):
        return out.sample
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        out = [getattr(out, f.name, None) for f in dataclasses.fields(out)]
    elif isinstance(out, dict):
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
        param_keys = list(model.state_dict())
        for name, module in model.named_modules():
            if not name:
                continue
            prefix = name + "."
            keys = frozenset(k for k in param_keys if k.startswith(prefix))
            self._handles.append(module.register_forward_hook(self._hook(name, keys)))

    def _hook(self, name: str, keys: frozenset[str]):
        def record(_module, inputs, output):
            call = self._calls.get(name, 0)
            self._calls[name] = call + 1
            t = first_tensor(output)
            if t is not None and any(t is x for x in inputs):
                t = None  # it returned its input (dropout in eval, nn.Identity): nothing computed, nothing to pair by shape
            self.entries.append(TraceEntry(name, call, None if t is None else t.detach().float().cpu(), keys))

        return record

    def close(self) -> None:
        for h in self._handles:
            h.remove()
