"""Which lines of the reference a forward executed, and the rank of the tensors each attention
call received (runs sandboxed). The structural port keeps a rewrite only where this record says
the call ran, and rewrites `scaled_dot_product_attention` only where every call it saw there had
4-D (batch, heads, tokens, dim) query, key and value."""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from contextlib import contextmanager


class CallSites:
    def __init__(self, root: str):
        self.root = os.path.realpath(root) + os.sep
        self.lines: dict[str, set[int]] = defaultdict(set)
        self.attention: dict[str, set[tuple[int, ...]]] = defaultdict(set)  # "file:line" -> ranks (q, k, v)
        self._files: dict[str, str | None] = {}

    def _rel(self, filename: str) -> str | None:
        if filename not in self._files:
            real = os.path.realpath(filename)
            self._files[filename] = real[len(self.root):] if real.startswith(self.root) else None
        return self._files[filename]

    def _global(self, frame, event, arg):
        rel = self._rel(frame.f_code.co_filename)
        if rel is None:
            return None
        self.lines[rel].add(frame.f_lineno)
        return self._local

    def _local(self, frame, event, arg):
        if event == "line":
            self.lines[self._rel(frame.f_code.co_filename)].add(frame.f_lineno)
        return self._local

    def caller(self) -> str | None:
        frame = sys._getframe(2)
        while frame is not None:
            rel = self._rel(frame.f_code.co_filename)
            if rel is not None:
                return f"{rel}:{frame.f_lineno}"
            frame = frame.f_back
        return None

    @contextmanager
    def recording(self):
        import torch
        import torch.nn.functional as F
        from torch.overrides import TorchFunctionMode

        sites = self

        class Attention(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                if func is F.scaled_dot_product_attention:
                    where = sites.caller()
                    qkv = [*args[:3], *(kwargs[k] for k in ("query", "key", "value") if k in kwargs)]
                    if where:
                        sites.attention[where].add(tuple(t.dim() for t in qkv if isinstance(t, torch.Tensor)))
                return func(*args, **kwargs)

        previous = sys.gettrace()
        sys.settrace(self._global)
        try:
            with Attention():
                yield self
        finally:
            sys.settrace(previous)

    def to_json(self) -> dict:
        return {
            "executed": {f: sorted(lines) for f, lines in sorted(self.lines.items())},
            "attention_ranks": {site: sorted(set(r for ranks in rs for r in ranks)) for site, rs in sorted(self.attention.items())},
        }
