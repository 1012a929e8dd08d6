"""Run a model's forward with tagged inputs and report what each argument reached (runs
sandboxed, on the reference).

Every tensor passed in is tagged with its argument's name; a torch function mode carries the
tags through every operation (and keeps an argument's own tag on results of its shape: a cast, an
activation, an added bias), and pre-hooks on every module record the first module of a known
kind (Linear, ConvNd, Embedding, LayerNorm, GroupNorm) that receives each argument's tensor. The
input search (sandbox/input_probe.py) reads these records; a meta-device copy can stand in for
the model, with the real one as fallback where the forward needs real values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Trial:
    ok: bool
    progress: int
    error: str = ""
    consumers: dict[str, dict] = field(default_factory=dict)  # arg -> first module reading its own tensor
    readers: dict[str, dict] = field(default_factory=dict)  # arg -> first module reading anything made from it
    touched: set[str] = field(default_factory=set)
    first_op: dict[str, str] = field(default_factory=dict)
    blamed: list[str] = field(default_factory=list)  # args whose tensors reached the failing module
    failing_module: str = ""
    modules: int = 0  # distinct modules the forward entered


def _consumer(module) -> dict | None:
    import torch.nn as nn

    name = type(module).__name__
    if isinstance(module, nn.modules.conv._ConvNd):
        return {"type": name, "in_channels": module.in_channels, "dims": len(module.kernel_size)}
    if isinstance(module, nn.Embedding):
        return {"type": name, "num_embeddings": module.num_embeddings}
    if isinstance(module, (nn.LayerNorm, getattr(nn, "RMSNorm", nn.LayerNorm))):
        return {"type": name, "normalized_shape": list(module.normalized_shape)}
    if isinstance(module, nn.GroupNorm):
        return {"type": name, "num_channels": module.num_channels}
    if isinstance(getattr(module, "in_features", None), int):
        return {"type": name, "in_features": module.in_features}
    return None


class Prober:
    """Runs the model's forward with tagged inputs and reports what each argument reached."""

    def __init__(self, model, fallback=None):
        self.fallback = fallback  # the real model, when `model` is a meta-device copy
        self._use(model)

    def _use(self, model) -> None:
        import torch

        self.model = model
        self.names = {m: n or type(model).__name__ for n, m in model.named_modules()}
        self.device = next((p.device for p in model.parameters()), torch.device("cpu"))

    def trial(self, kwargs: dict[str, Any]) -> Trial:
        trial = self._trial(kwargs)
        if not trial.ok and self.fallback is not None and re.search(r"\bmeta\b|NotImplementedError|data-dependent", trial.error):
            self._use(self.fallback)  # the reference does something the meta device cannot: run it for real
            self.fallback = None
            trial = self._trial(kwargs)
        return trial

    def _trial(self, kwargs: dict[str, Any]) -> Trial:
        import torch
        from torch.overrides import TorchFunctionMode
        from torch.utils._pytree import tree_leaves
        from torch.utils.weak import WeakIdKeyDictionary

        tags, direct = WeakIdKeyDictionary(), WeakIdKeyDictionary()
        trial = Trial(ok=False, progress=0)
        stack: list[tuple[str, set[str]]] = []
        entered: set[int] = set()

        def tensors(obj):
            return [t for t in tree_leaves(obj) if isinstance(t, torch.Tensor)]

        class Track(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kw=None):
                kw = kw or {}
                trial.progress += 1
                found, straight = set(), set()
                shaped: list[tuple[tuple, set[str]]] = []
                for t in tensors((args, kw)):
                    found |= tags.get(t, set())
                    if t in direct:
                        straight |= direct[t]
                        shaped.append((tuple(t.shape), direct[t]))
                name = getattr(func, "__name__", str(func))
                for arg in straight:
                    trial.first_op.setdefault(arg, name)
                trial.touched |= found
                out = func(*args, **kw)
                if found:
                    for t in tensors(out):
                        tags[t] = tags.get(t, set()) | found
                        # an op that keeps an input's shape (a cast, an activation, a scale, adding
                        # a broadcast bias) keeps what the next module reads sized like the input
                        same = set().union(*(d for shape, d in shaped if shape == tuple(t.shape))) if shaped else set()
                        if same:
                            direct[t] = direct.get(t, set()) | same
                return out

        def pre(module, args, kw):
            seen: set[str] = set()
            own: set[str] = set()
            for t in tensors((args, kw)):
                seen |= tags.get(t, set())
                own |= direct.get(t, set())
            info = _consumer(module)
            if info:
                where = {**info, "module": self.names.get(module, "?")}
                for arg in seen:
                    if arg not in trial.readers:
                        t = next(t for t in tensors((args, kw)) if arg in tags.get(t, set()))
                        trial.readers[arg] = {**where, "received": list(t.shape)}
                for arg in own:
                    t = next(t for t in tensors((args, kw)) if arg in direct.get(t, set()))
                    trial.consumers.setdefault(arg, {**where, "shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")})
            stack.append((self.names.get(module, "?"), seen))
            entered.add(id(module))

        def post(module, args, kw, out):
            stack.pop()

        handles = []
        for m in self.model.modules():
            handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(m.register_forward_hook(post, with_kwargs=True))
        inputs = {k: _to(v, self.device) for k, v in kwargs.items()}
        for name, value in inputs.items():
            for t in tensors(value):
                tags[t], direct[t] = {name}, {name}
        try:
            with torch.no_grad(), Track():
                self.model(**inputs)
            trial.ok = True
        except Exception as exc:  # the reference is untrusted: every failure is evidence
            trial.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:300]
            if stack:
                trial.failing_module, seen = stack[-1]
                trial.blamed = sorted(seen)
        finally:
            for h in handles:
                h.remove()
            trial.modules = len(entered)
        return trial


def _to(value, device):
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_to(v, device) for v in value)
    return value
